"""What ``verify`` found, as a table and plain words, and whether it passes."""

from __future__ import annotations

import math
import textwrap
from dataclasses import asdict, dataclass

from rich.console import Console
from rich.table import Table

from lightning_template_core._verification.causes import Suspect
from lightning_template_core._verification.layouts import LAYOUTS, REFERENCE, is_exact


@dataclass(frozen=True)
class Ablation:
    """The differing layouts re-run with ``causes`` switched off (by ``switches``): max |dW| per layout."""

    causes: tuple[str, ...]
    switches: tuple[str, ...]
    differences: dict[str, float]

    @property
    def exact(self) -> bool:
        return all(is_exact(d) for d in self.differences.values())


@dataclass(frozen=True)
class Outcome:
    experiment: str
    steps: int
    global_batch_size: int
    differences: dict[str, float]  # layout name -> max |dW| against one process
    resumed: float | None  # max |dW| of the resumed run; None where the config keeps no checkpoints
    resumed_from: int
    suspects: list[Suspect]
    ablations: list[Ablation]
    accepted: tuple[str, ...]
    unseen: tuple[str, ...]
    output_dir: str

    @property
    def layouts_exact(self) -> bool:
        return all(is_exact(d) for d in self.differences.values())

    def accounting(self) -> Ablation | None:
        """The ablation that switches off exactly the accepted causes found, if it makes every layout exact."""
        accepted = {s.cause for s in self.suspects if s.cause in self.accepted}
        return next((a for a in self.ablations if set(a.causes) == accepted and a.exact), None) if accepted else None

    def passes(self) -> bool:
        resume_ok = self.resumed is None or is_exact(self.resumed)
        return resume_ok and (self.layouts_exact or self.accounting() is not None)

    def as_dict(self) -> dict:
        return {**asdict(self), "passes": self.passes(), "layouts_exact": self.layouts_exact}


def _shown(difference: float) -> str:
    return "run failed" if math.isnan(difference) else f"{difference:.3g}"


def _verdict(difference: float) -> str:
    if math.isnan(difference):
        return "[red]failed (see its fit.log)[/red]"
    return "exact" if is_exact(difference) else "[red]NOT exact[/red]"


def _layout_table(outcome: Outcome) -> Table:
    table = Table(
        title=f"{outcome.experiment}: {outcome.steps} optimizer steps of a global batch of"
        f" {outcome.global_batch_size}, float64 on the CPU; max |dW|: the largest weight difference from 1 process",
        title_justify="left",
    )
    for column in ("run", "micro x acc. x procs", "max |dW|", "verdict"):
        table.add_column(column)
    table.add_row(REFERENCE.name, REFERENCE.shape(outcome.global_batch_size), "-", "reference")
    for layout in LAYOUTS[1:]:
        difference = outcome.differences[layout.name]
        table.add_row(layout.name, layout.shape(outcome.global_batch_size), _shown(difference), _verdict(difference))
    if outcome.resumed is None:
        table.add_row("stopped and resumed", "-", "-", "not checked (no callbacks.model_checkpoint)")
    else:
        table.add_row(
            f"stopped at step {outcome.resumed_from}, resumed",
            REFERENCE.shape(outcome.global_batch_size),
            _shown(outcome.resumed),
            _verdict(outcome.resumed),
        )
    return table


def _ablation_table(outcome: Outcome) -> Table:
    table = Table(title="The differing layouts again, each suspect switched off", title_justify="left")
    for column in ("switched off", "run", "max |dW|", "verdict"):
        table.add_column(column)
    for ablation in outcome.ablations:
        for number, (name, difference) in enumerate(ablation.differences.items()):
            switched = " ".join(ablation.switches) if number == 0 else ""
            table.add_row(switched, name, _shown(difference), _verdict(difference))
    return table


def _paragraph(console: Console, text: str, indent: str = "  ") -> None:
    console.print(textwrap.fill(text, width=100, initial_indent=indent, subsequent_indent=indent + "  "))


def _explain(console: Console, outcome: Outcome) -> None:
    console.print("\nWhy")
    for suspect in outcome.suspects:
        alone = next((a for a in outcome.ablations if a.causes == (suspect.cause,)), None)
        if alone is None:
            confirmed = "no config switch to confirm it by re-running"
        elif alone.exact:
            confirmed = f"confirmed: with {suspect.switch} every layout is exact"
        else:
            confirmed = f"with {suspect.switch} alone some layouts still differ"
        _paragraph(console, f"- {suspect.cause}: {suspect.found} ({confirmed}).")
    together = next((a for a in outcome.ablations if len(a.causes) > 1), None)
    if together is not None and together.exact and not any(len(a.causes) == 1 and a.exact for a in outcome.ablations):
        _paragraph(console, f"- together: with {' '.join(together.switches)} every layout is exact.")
    if not any(a.exact for a in outcome.ablations):
        _paragraph(console, "- not (all) accounted for by what verify can see. Look for:")
        for unseen in outcome.unseen:
            _paragraph(console, f"* {unseen}", indent="    ")
    console.print("\nWhat to change")
    for suspect in outcome.suspects:
        _paragraph(console, f"- {suspect.cause}: {suspect.advice}.")
    if not outcome.suspects:
        _paragraph(console, "- see the list above: nothing in the model mixes samples or draws noise.")


def print_report(outcome: Outcome) -> None:
    console = Console(soft_wrap=True)
    console.print(_layout_table(outcome))
    if outcome.ablations:
        console.print(_ablation_table(outcome))
    if not outcome.layouts_exact:
        _explain(console, outcome)
    if outcome.resumed is not None and not is_exact(outcome.resumed):
        _paragraph(
            console,
            "- resume: the run stopped and resumed differs from the straight one: some state is not in the"
            " checkpoint (a callback's, a sampler's, a random stream of your own); docs/surviving-failures.md.",
            indent="",
        )
    accounted = outcome.accounting()
    if outcome.passes() and outcome.layouts_exact:
        result = "exact: every split of the global batch trains the same model, and the resume is exact."
    elif outcome.passes():
        result = f"passes: the layouts differ only through {' + '.join(accounted.causes)}, accepted (verify.accept)."
    else:
        result = "NOT exact (exit status 1)."
    console.print(f"\nResult: {result} Runs: {outcome.output_dir}")
