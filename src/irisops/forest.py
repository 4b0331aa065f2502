"""The forest file (`forest.npz`): a random forest as flattened node arrays, data only.

What the API evaluates with its compiled walker (`irisops._forest`). The file is a
plain `.npz` of numeric arrays, read with `allow_pickle=False`, so nothing in it can run
as code; everything about it is checked once, here, before the walker sees it:

    format      int64 ()      FORMAT, the layout below
    n_features  int64 ()      features a row has
    feature     int32 (n,)    feature tested at each node (-1 at a leaf)
    threshold   float64 (n,)  go left when float64(float32 x[feature]) <= threshold
    left        int32 (n,)    left child, -1 at a leaf
    right       int32 (n,)    right child, -1 at a leaf
    value       float64 (n, c) class probabilities of each leaf (rows sum to 1)
    roots       int32 (t,)    first node of each tree; tree k is nodes roots[k]..roots[k+1]-1

`n` counts the nodes of all `t` trees, laid end to end in tree order; children are
indices into the same arrays. A child always lies after its parent and inside its own
tree, and has no other parent, so no walk can loop or leave its tree.

This module must stay importable without scikit-learn (the API image has none).
"""

import io
import zipfile
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from irisops import _forest
from irisops.bundle import FOREST_FILE, BundleError

FORMAT: Final = 1
# Far past any sensible forest (Iris: ~2,000 nodes, 100 KB): a bigger file is refused
# before it is decompressed, rather than filling the memory of the API.
MAX_BYTES: Final = 256 * 1024 * 1024
# Leaf rows are probabilities: each sums to 1 but for rounding.
SUM_TOLERANCE: Final = 1e-9

INT32, FLOAT64 = np.dtype(np.int32), np.dtype(np.float64)
ARRAYS: Final = {
    "format": (np.dtype(np.int64), 0),
    "n_features": (np.dtype(np.int64), 0),
    "feature": (INT32, 1),
    "threshold": (FLOAT64, 1),
    "left": (INT32, 1),
    "right": (INT32, 1),
    "value": (FLOAT64, 2),
    "roots": (INT32, 1),
}

Arrays = dict[str, npt.NDArray[Any]]


def encode(arrays: Arrays) -> bytes:
    """The `.npz` bytes of `arrays`, written as they are (checked only when read)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def read_arrays(data: bytes) -> Arrays:
    """The arrays of a forest file: numeric only, never a pickle, of the documented types."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            size = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile as exc:
        raise BundleError(f"{FOREST_FILE} is not an .npz archive: {exc}") from exc
    if size > MAX_BYTES:
        raise BundleError(f"{FOREST_FILE} holds {size:,} bytes, over {MAX_BYTES:,}")
    arrays: Arrays = {}
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            if set(npz.files) != set(ARRAYS):
                raise BundleError(
                    f"{FOREST_FILE} holds {sorted(npz.files)}, expected {sorted(ARRAYS)}"
                )
            for name in ARRAYS:
                arrays[name] = npz[name]
    except BundleError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        # An object array among them: "Object arrays cannot be loaded when allow_pickle=False".
        raise BundleError(f"{FOREST_FILE} cannot be read as numeric arrays: {exc}") from exc
    for name, (dtype, ndim) in ARRAYS.items():
        array = arrays[name]
        if array.dtype != dtype or array.ndim != ndim:
            raise BundleError(
                f"{FOREST_FILE}: {name} is {array.dtype} with {array.ndim} dimensions, "
                f"expected {dtype} with {ndim}"
            )
    return arrays


def check(arrays: Arrays) -> None:
    """Every structural property the walker relies on, with the first one that fails."""
    version, n_features = int(arrays["format"]), int(arrays["n_features"])
    if version != FORMAT:
        raise BundleError(f"{FOREST_FILE} has format {version}; this version reads {FORMAT}")
    feature, threshold, value = arrays["feature"], arrays["threshold"], arrays["value"]
    left, right, roots = arrays["left"], arrays["right"], arrays["roots"]
    n = len(feature)
    if n == 0 or len(roots) == 0 or n_features < 1 or value.shape[1] < 1:
        raise BundleError(f"{FOREST_FILE} is empty: {n} nodes, {len(roots)} trees")
    if not len(threshold) == len(left) == len(right) == len(value) == n:
        raise BundleError(f"{FOREST_FILE}: the node arrays differ in length")
    if roots[0] != 0 or np.any(np.diff(roots) <= 0) or roots[-1] >= n:
        raise BundleError(f"{FOREST_FILE}: tree roots must rise from node 0, below {n}")
    nodes = np.arange(n)
    leaf = (left == -1) & (right == -1)
    inner = ~leaf
    # The end (exclusive) of the tree each node belongs to.
    end = np.append(roots[1:], n)[np.searchsorted(roots, nodes, side="right") - 1]
    for name, child in (("left", left), ("right", right)):
        bad = inner & ((child <= nodes) | (child >= end))
        if bad.any():
            at = int(np.flatnonzero(bad)[0])
            raise BundleError(
                f"{FOREST_FILE}: node {at}'s {name} child {int(child[at])} is not a later "
                f"node of its own tree (nodes {at + 1}..{int(end[at]) - 1})"
            )
    parents = np.bincount(np.concatenate([left[inner], right[inner]]), minlength=n)
    if (parents > 1).any():
        at = int(np.flatnonzero(parents > 1)[0])
        raise BundleError(f"{FOREST_FILE}: node {at} has more than one parent")
    bad = inner & ((feature < 0) | (feature >= n_features))
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        raise BundleError(
            f"{FOREST_FILE}: node {at} tests feature {int(feature[at])} of {n_features}"
        )
    if np.isnan(threshold[inner]).any():
        raise BundleError(f"{FOREST_FILE}: a split threshold is NaN")
    leaves = value[leaf]
    if (
        not np.isfinite(leaves).all()
        or (leaves < 0).any()
        or not np.allclose(leaves.sum(axis=1), 1.0, rtol=0, atol=SUM_TOLERANCE)
    ):
        raise BundleError(f"{FOREST_FILE}: leaf values are not probabilities")


def load(data: bytes) -> _forest.Forest:
    """The compiled forest of a forest file; any flaw is a `BundleError` naming it."""
    arrays = read_arrays(data)
    check(arrays)
    try:
        return _forest.Forest(
            feature=arrays["feature"],
            threshold=arrays["threshold"],
            left=arrays["left"],
            right=arrays["right"],
            value=np.ascontiguousarray(arrays["value"]),
            roots=arrays["roots"],
            n_features=int(arrays["n_features"]),
            n_classes=arrays["value"].shape[1],
        )
    except ValueError as exc:  # the walker's own checks: the same rules, in C
        raise BundleError(f"{FOREST_FILE}: {exc}") from exc
