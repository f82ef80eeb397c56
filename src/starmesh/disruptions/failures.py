"""Failures: satellites, planes, ISLs and ground sites down during time windows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..constellation import Constellation
from ..errors import ScenarioError
from ._common import _FAILURES, BoolArray, _check_window, _window_active


@dataclass(frozen=True, eq=False)
class Outage:
    """A set of elements (satellites, ISLs or ground sites) down during ``[start_s, end_s)``.

    Build one with :func:`outage_of`, :func:`plane_outage`, :func:`random_outage` or
    :func:`isl_outage_by_endpoints`, which check the indices against the number of elements.

    Parameters
    ----------
    idx : array_like of int, shape (K,)
        Indices of the failed elements (duplicates are dropped).
    start_s, end_s : float
        Window [s from the scenario epoch]; the whole run by default.
    label : str
        Shown in messages and summaries.
    """

    idx: NDArray[np.int64]
    start_s: float = -math.inf
    end_s: float = math.inf
    label: str = ""

    def __post_init__(self) -> None:
        where = f"{_FAILURES}[{self.label!r}]" if self.label else _FAILURES
        start, end = _check_window(self.start_s, self.end_s, where)
        idx = np.unique(np.asarray(self.idx, dtype=np.int64).reshape(-1))
        idx.setflags(write=False)
        object.__setattr__(self, "idx", idx)
        object.__setattr__(self, "start_s", start)
        object.__setattr__(self, "end_s", end)

    def active(self, t_s: ArrayLike) -> BoolArray:
        """Steps at which the outage holds.

        Parameters
        ----------
        t_s : array_like, shape (T,)
            Step times [s from the epoch].

        Returns
        -------
        ndarray of bool, shape (T,)
        """
        return _window_active(t_s, self.start_s, self.end_s)


def _check_indices(idx: ArrayLike, n: int, what: str, where: str) -> NDArray[np.int64]:
    arr = np.asarray(idx)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ScenarioError(where, f"{what} indices must be integers, got {arr.reshape(-1)[:3]!r}")
    arr = arr.astype(np.int64).reshape(-1)
    bad = arr[(arr < 0) | (arr >= n)]
    if bad.size:
        raise ScenarioError(
            where, f"{what} index {int(bad[0])} out of range: there are {n} {what}s (0 .. {n - 1})"
        )
    return arr


def outage_of(
    idx: ArrayLike,
    n: int,
    *,
    what: str = "satellite",
    start_s: float = -math.inf,
    end_s: float = math.inf,
    label: str = "",
    where: str = _FAILURES,
) -> Outage:
    """Named elements down during a window.

    Parameters
    ----------
    idx : array_like of int
        Element indices.
    n : int
        Number of elements (satellites ``S``, ISLs ``E`` or sites ``G``).
    what : str
        Element kind, for messages.
    start_s, end_s : float
        Window [s].
    label : str
        Outage label.
    where : str
        Scenario field named in errors.

    Raises
    ------
    ScenarioError
        If an index is out of range or the window is empty.

    Examples
    --------
    >>> outage_of([3, 1, 3], 10, start_s=60.0).idx
    array([1, 3])
    """
    return Outage(_check_indices(idx, n, what, where), start_s, end_s, label)


def shell_plane_of_sats(
    constellation: Constellation,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Shell and plane index of every satellite, for :func:`plane_outage`.

    Returns
    -------
    shell_idx, plane_idx : ndarray of int64, shape (S,)
        ``-1`` for satellites without a plane layout (TLE sets).
    """
    shell_idx = np.full(constellation.n_sats, -1, dtype=np.int64)
    plane_idx = np.full(constellation.n_sats, -1, dtype=np.int64)
    for k, lay in enumerate(constellation.shells):
        plane, _slot = lay.shell.plane_slot()
        sl = slice(lay.offset, lay.offset + lay.shell.n_sats)
        shell_idx[sl] = k
        plane_idx[sl] = plane
    return shell_idx, plane_idx


def plane_outage(
    shell_idx: ArrayLike,
    plane_idx: ArrayLike,
    *,
    shell: int,
    planes: Sequence[int] | None = None,
    start_s: float = -math.inf,
    end_s: float = math.inf,
    label: str = "",
    where: str = _FAILURES,
) -> Outage:
    """Every satellite of whole orbital planes (or of a whole shell) down.

    Parameters
    ----------
    shell_idx, plane_idx : array_like of int, shape (S,)
        Shell and plane of each satellite (:func:`shell_plane_of_sats`).
    shell : int
        Shell index.
    planes : sequence of int, optional
        Planes of that shell; all of them if omitted.

    Raises
    ------
    ScenarioError
        If no satellite is in that shell or one of the planes.

    Examples
    --------
    >>> plane_outage([0, 0, 0, 0, 1, 1], [0, 0, 1, 1, 0, 0], shell=0, planes=[1]).idx
    array([2, 3])
    """
    sh = np.asarray(shell_idx, dtype=np.int64).reshape(-1)
    pl = np.asarray(plane_idx, dtype=np.int64).reshape(-1)
    if sh.shape != pl.shape:
        raise ScenarioError(
            where, f"conflicting sizes: {sh.size} shell indices, {pl.size} plane indices"
        )
    in_shell = sh == shell
    if not in_shell.any():
        shells = sorted(set(int(s) for s in sh[sh >= 0]))
        raise ScenarioError(where, f"no satellite in shell {shell}: shells are {shells}")
    mask = in_shell
    if planes is not None:
        wanted = np.asarray(list(planes), dtype=np.int64)
        present = np.unique(pl[in_shell])
        missing = np.setdiff1d(wanted, present)
        if missing.size:
            raise ScenarioError(
                where,
                f"shell {shell} has no plane {int(missing[0])}: its planes are "
                f"{int(present.min())} .. {int(present.max())}",
            )
        mask = in_shell & np.isin(pl, wanted)
    return Outage(np.flatnonzero(mask), start_s, end_s, label)


def random_outage(
    n: int,
    fraction: float,
    *,
    seed: int | np.random.Generator,
    what: str = "satellite",
    start_s: float = -math.inf,
    end_s: float = math.inf,
    label: str = "",
    where: str = _FAILURES,
) -> Outage:
    """A random ``fraction`` of ``n`` elements down, drawn without replacement.

    Exactly ``floor(fraction * n + 0.5)`` elements fail (the fraction rounded half up).

    Parameters
    ----------
    n : int
        Number of elements.
    fraction : float
        In ``[0, 1]``.
    seed : int or numpy.random.Generator
        The same seed always picks the same elements.

    Raises
    ------
    ScenarioError
        If the fraction is outside ``[0, 1]``.

    Examples
    --------
    >>> a = random_outage(1584, 0.1, seed=7)
    >>> a.idx.size, bool(np.array_equal(a.idx, random_outage(1584, 0.1, seed=7).idx))
    (158, True)
    """
    f = float(fraction)
    if not 0.0 <= f <= 1.0:
        raise ScenarioError(
            where, f"fraction of {what}s must be in [0, 1], got {fraction!r} (10 % is 0.1)"
        )
    rng = np.random.default_rng(seed)
    count = min(n, math.floor(f * n + 0.5))
    idx = rng.choice(n, size=count, replace=False) if count else np.zeros(0, np.int64)
    return Outage(np.asarray(idx, dtype=np.int64), start_s, end_s, label)


def isl_outage_by_endpoints(
    isl_edges: ArrayLike,
    pairs: ArrayLike,
    *,
    start_s: float = -math.inf,
    end_s: float = math.inf,
    label: str = "",
    where: str = _FAILURES,
) -> Outage:
    """ISLs named by their two satellites, in either order.

    Parameters
    ----------
    isl_edges : array_like of int, shape (E, 2)
        The run's ISLs.
    pairs : array_like of int, shape (K, 2)
        Satellite index pairs.

    Raises
    ------
    ScenarioError
        If a pair is not an ISL of the run.

    Examples
    --------
    >>> edges = np.array([[0, 1], [1, 2], [2, 3]])
    >>> isl_outage_by_endpoints(edges, [[2, 1], [3, 2]]).idx
    array([1, 2])
    """
    e = np.sort(np.asarray(isl_edges, dtype=np.int64).reshape(-1, 2), axis=1)
    p = np.sort(np.asarray(pairs, dtype=np.int64).reshape(-1, 2), axis=1)
    lookup = {(int(a), int(b)): i for i, (a, b) in enumerate(e)}
    idx = []
    for a, b in p:
        key = (int(a), int(b))
        if key not in lookup:
            raise ScenarioError(
                where,
                f"no ISL between satellites {key[0]} and {key[1]}: list pairs from the run's "
                "isls.parquet (+Grid links join in-plane and adjacent-plane neighbours only)",
            )
        idx.append(lookup[key])
    return Outage(np.asarray(idx, dtype=np.int64), start_s, end_s, label)


def _mask(n: int, outages: Sequence[Outage], t_s: ArrayLike) -> BoolArray:
    t = np.atleast_1d(np.asarray(t_s, dtype=np.float64))
    out = np.zeros((t.size, n), dtype=np.bool_)
    for o in outages:
        if o.idx.size:
            out[:, o.idx] |= o.active(t)[:, None]
    return out


@dataclass(frozen=True, eq=False)
class FailurePlan:
    """Every failure of a run, turned into per-step masks chunk by chunk.

    Parameters
    ----------
    n_sats : int
        ``S``.
    isl_edges : ndarray of int, shape (E, 2)
        The run's ISLs.
    n_sites : int
        ``G``.
    sats, isls, sites : sequence of Outage
        Outages of satellites, ISLs and ground sites (gateways, PoPs, terminals).

    Raises
    ------
    ScenarioError
        If an outage names an element that does not exist.

    Examples
    --------
    >>> plan = FailurePlan(4, np.array([[0, 1], [1, 2], [2, 3]]), 2,
    ...                    sats=[outage_of([2], 4, start_s=10.0, end_s=20.0)])
    >>> plan.sat_failed([0.0, 10.0, 20.0]).astype(int)
    array([[0, 0, 0, 0],
           [0, 0, 1, 0],
           [0, 0, 0, 0]])
    >>> plan.isl_failed([10.0]).astype(int)  # both ISLs of satellite 2
    array([[0, 1, 1]])
    """

    n_sats: int
    isl_edges: NDArray[np.int64]
    n_sites: int
    sats: tuple[Outage, ...] = ()
    isls: tuple[Outage, ...] = ()
    sites: tuple[Outage, ...] = ()

    def __post_init__(self) -> None:
        edges = np.asarray(self.isl_edges, dtype=np.int64).reshape(-1, 2)
        edges.setflags(write=False)
        object.__setattr__(self, "isl_edges", edges)
        for name, n, what in (
            ("sats", self.n_sats, "satellite"),
            ("isls", edges.shape[0], "ISL"),
            ("sites", self.n_sites, "site"),
        ):
            outages = tuple(getattr(self, name))
            object.__setattr__(self, name, outages)
            for o in outages:
                where = f"{_FAILURES}.{name}[{o.label!r}]" if o.label else f"{_FAILURES}.{name}"
                _check_indices(o.idx, n, what, where)

    def sat_failed(self, t_s: ArrayLike) -> BoolArray:
        """Failed satellites, ndarray of bool, shape ``(T, S)``, for step times ``t_s (T,)``."""
        return _mask(self.n_sats, self.sats, t_s)

    def isl_failed(self, t_s: ArrayLike, *, sat_failed: BoolArray | None = None) -> BoolArray:
        """Failed ISLs, ndarray of bool, shape ``(T, E)``: the ISL's own outages, or either of its
        satellites failed (``sat_failed (T, S)``, computed if not given)."""
        out = _mask(self.isl_edges.shape[0], self.isls, t_s)
        sf = self.sat_failed(t_s) if sat_failed is None else sat_failed
        if self.isl_edges.size:
            out |= sf[:, self.isl_edges[:, 0]] | sf[:, self.isl_edges[:, 1]]
        return out

    def site_failed(self, t_s: ArrayLike) -> BoolArray:
        """Failed ground sites, ndarray of bool, shape ``(T, G)``."""
        return _mask(self.n_sites, self.sites, t_s)


def gsl_failed(
    t_idx: ArrayLike,
    site_idx: ArrayLike,
    sat_idx: ArrayLike,
    *,
    sat_failed: BoolArray,
    site_failed: BoolArray,
    site_denied: BoolArray | None = None,
) -> BoolArray:
    """GSL candidates that a failure (or a geofence) takes down.

    Parameters
    ----------
    t_idx, site_idx, sat_idx : array_like of int, shape (L,)
        The chunk's GSL candidates (:class:`starmesh.topology.GslCandidates`).
    sat_failed : ndarray of bool, shape (T, S)
    site_failed : ndarray of bool, shape (T, G)
    site_denied : ndarray of bool, shape (G,), optional
        Sites in a service-denied area (:meth:`Geofence.denied_sites`).

    Returns
    -------
    ndarray of bool, shape (L,)
    """
    t = np.asarray(t_idx, dtype=np.int64)
    g = np.asarray(site_idx, dtype=np.int64)
    s = np.asarray(sat_idx, dtype=np.int64)
    out = sat_failed[t, s] | site_failed[t, g]
    if site_denied is not None:
        out = out | np.asarray(site_denied, dtype=np.bool_)[g]
    return np.asarray(out, dtype=np.bool_)
