"""Class names of a classifier: look a class up by index, WordNet id or any of its names.

Rule for names: spaces, underscores and hyphens are equivalent and case is
ignored ("great_white_shark" == "Great White Shark").  When a name is shared
by several classes (ImageNet's "Cardigan" the corgi and "cardigan" the sweater,
its two "crane"s), an exact, case-sensitive match decides if there is exactly
one; otherwise the name is ambiguous and the error lists the candidates with
their indices and WordNet ids.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache


class ClassLookupError(ValueError):
    pass


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.strip()).lower()


class ClassNames:
    def __init__(self, names: list[list[str]], wnids: list[str] | None = None):
        """names[i]: the names of class i, the first being its display name."""
        self.names = [list(n) for n in names]
        self.wnids = list(wnids) if wnids else None
        self._by_norm: dict[str, list[int]] = {}
        for i, ns in enumerate(self.names):
            for n in ns:
                lst = self._by_norm.setdefault(_norm(n), [])
                if i not in lst:
                    lst.append(i)
        self._by_wnid = {w: i for i, w in enumerate(self.wnids or [])}

    def __len__(self) -> int:
        return len(self.names)

    def name(self, index: int) -> str:
        return self.names[index][0]

    def describe(self, index: int) -> str:
        w = f" {self.wnids[index]}" if self.wnids else ""
        return f"{index}{w} '{', '.join(self.names[index])}'"

    def resolve(self, key: str | int) -> int:
        """Index of the class named by ``key`` (index, WordNet id or name)."""
        if isinstance(key, int) or (isinstance(key, str) and key.strip().isdigit()):
            i = int(key)
            if not 0 <= i < len(self):
                raise ClassLookupError(
                    f"class index {i} out of range: this classifier has {len(self)} classes"
                )
            return i
        key = str(key).strip()
        if key in self._by_wnid:
            return self._by_wnid[key]
        cands = self._by_norm.get(_norm(key), [])
        if len(cands) == 1:
            return cands[0]
        if len(cands) > 1:
            exact = [i for i in cands if key in self.names[i]]
            if len(exact) == 1:
                return exact[0]
            lines = "\n".join(f"  class:{i}  ({self.describe(i)})" for i in cands)
            raise ClassLookupError(
                f"class name {key!r} is ambiguous; name one by index or WordNet id:\n{lines}"
            )
        close = difflib.get_close_matches(_norm(key), list(self._by_norm), n=5, cutoff=0.6)
        if not close:  # substring matches help with partial names ("shark")
            close = [n for n in self._by_norm if _norm(key) in n][:5]
        hint = ""
        if close:
            hint = "; did you mean: " + ", ".join(f"{n!r} (class:{self._by_norm[n][0]})" for n in close)
        raise ClassLookupError(f"unknown class {key!r}{hint}")

    @classmethod
    def numbered(cls, n: int) -> ClassNames:
        return cls([[f"class_{i}"] for i in range(n)])


@lru_cache(maxsize=1)
def imagenet() -> ClassNames:
    """ImageNet-1k names and WordNet ids, from metadata that ships with timm (no download)."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    wnids, names = [], []
    for i in range(1000):
        wnids.append(info.index_to_label_name(i))
        names.append([s.strip() for s in info.index_to_description(i).split(",") if s.strip()])
    return ClassNames(names, wnids)
