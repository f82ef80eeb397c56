"""Tests of starmesh.coverage and starmesh.regions: coverage on H3 cells against brute-force
elevation geometry, against closed forms (coverage cone, Walker latitude band, Walker latitude
density), disruptions, outputs, per-terminal statistics and bad input."""

from __future__ import annotations

import json
import math

import h3
import numpy as np
import pyarrow.parquet as pq
import pytest
from numpy.typing import NDArray
from scipy import integrate

from starmesh.constants import EARTH_MEAN_RADIUS_M, WGS84_A_M
from starmesh.constellation import Constellation, WalkerShell
from starmesh.coverage import (
    STATISTICS,
    coverage,
    coverage_geojson,
    coverage_table,
    denied_cells,
    terminal_visibility,
    terminal_visibility_links,
    write_coverage_geojson,
    write_coverage_parquet,
)
from starmesh.disruptions import Geofence
from starmesh.errors import ScenarioError
from starmesh.frames import elevation_rad, geodetic_to_ecef, up_vectors
from starmesh.propagation import Propagator
from starmesh.regions import CellGrid, country_shape, region_cells
from starmesh.timegrid import TimeGrid

EPOCH = "2026-05-12T00:00:00Z"
R = EARTH_MEAN_RADIUS_M


def _shell(planes: int, per: int, alt_km: float, inc_deg: float, phasing: int = 1) -> Constellation:
    s = WalkerShell(f"{alt_km}-{inc_deg}", planes, per, phasing, alt_km * 1e3, inc_deg)
    return Constellation.from_shells("test", [s], epoch=EPOCH)


def _brute_force(
    cons: Constellation, tg: TimeGrid, grid: CellGrid, eps_deg: float, earth_model: str = "wgs84"
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Visibility and elevation (T, C, S) by the run engine's own elevation
    (``frames.elevation_rad`` above the WGS84 normal of a geodetic ground point), or on the
    sphere: sin(el) = (r_sat - g) . up / |r_sat - g|; no coverage half-angle involved."""
    r, _ok = Propagator(cons, tg.epoch).positions_ecef_m(tg.t_s())
    if earth_model == "wgs84":
        lat, lon = np.radians(grid.lat_deg), np.radians(grid.lon_deg)
        g, up = geodetic_to_ecef(lat, lon, 0.0), up_vectors(lat, lon)
        el = elevation_rad(g[None, :, None, :], up[None, :, None, :], r[:, None, :, :])
    else:
        up = grid.unit_vectors()
        v = r[:, None, :, :] - (R * up)[None, :, None, :]
        sin_el = np.einsum("tcsk,ck->tcs", v, up) / np.linalg.norm(v, axis=-1)
        el = np.arcsin(np.clip(sin_el, -1, 1))
    return el >= math.radians(eps_deg), el


def _runs(x: NDArray[np.bool_]) -> list[int]:
    """Lengths of the runs of True in a 1-D series."""
    out, n = [], 0
    for v in x:
        if v:
            n += 1
        elif n:
            out.append(n)
            n = 0
    if n:
        out.append(n)
    return out


# --- against brute force --------------------------------------------------------------------------


@pytest.mark.parametrize("earth_model", ["wgs84", "sphere"])
def test_counts_serving_gaps_handovers_match_brute_force(earth_model: str) -> None:
    # A sparse shell so cells see gaps, a step shorter than the slot so holding matters.
    cons = _shell(6, 8, 550.0, 53.0)
    tg = TimeGrid.from_utc(EPOCH, duration_s=3600, step_s=10)
    grid = region_cells([20.0, 40.0, 45.0, 55.0], 2)
    res = coverage(
        cons, tg, region=grid, min_elevation_deg=25.0, k=2, chunk_steps=37, earth_model=earth_model
    )
    vis, el = _brute_force(cons, tg, grid, 25.0, earth_model)
    n = vis.sum(axis=2)
    st = res.statistics()
    np.testing.assert_array_equal(st["frac_ge1"], (n >= 1).mean(axis=0))
    np.testing.assert_array_equal(st["frac_ge_k"], (n >= 2).mean(axis=0))
    np.testing.assert_allclose(st["n_view_mean"], n.mean(axis=0), rtol=0, atol=1e-12)
    for c in range(grid.n_cells):
        np.testing.assert_array_equal(
            res.n_view_hist[c, : n.max() + 1], np.bincount(n[:, c], minlength=n.max() + 1)
        )
        gaps = _runs(n[:, c] == 0)
        assert st["n_gaps"][c] == len(gaps)
        assert st["gap_max_s"][c] == (max(gaps) * 10.0 if gaps else 0.0)
        assert st["gap_mean_s"][c] == pytest.approx(np.mean(gaps) * 10.0 if gaps else 0.0)
    assert st["n_gaps"].sum() > 0, "the test shell must leave gaps"
    term = terminal_visibility(vis, el, step_s=10.0)
    np.testing.assert_array_equal(st["handovers"], term.handovers)
    assert term.handovers.sum() > 0
    np.testing.assert_allclose(
        st["serving_elevation_mean_deg"],
        np.degrees(np.nanmean(term.serving_elevation_rad, axis=0)),
        atol=1e-9,
    )


@pytest.mark.parametrize("earth_model", ["wgs84", "sphere"])
def test_whole_earth_counts_match_brute_force_across_antimeridian(earth_model: str) -> None:
    cons = _shell(24, 20, 550.0, 53.0, phasing=5)
    grid = region_cells(None, 1)
    for epoch in (EPOCH, "2026-05-12T00:20:34Z", "2026-05-12T00:50:00Z"):
        tg = TimeGrid.from_utc(epoch, duration_s=1, step_s=1)
        res = coverage(cons, tg, region=grid, min_elevation_deg=10.0, earth_model=earth_model)
        vis, _ = _brute_force(cons, tg, grid, 10.0, earth_model)
        np.testing.assert_array_equal(res.statistics()["n_view_mean"], vis[0].sum(axis=1))


# --- closed forms ---------------------------------------------------------------------------------


def test_one_satellite_coverage_cone() -> None:
    # SMAD (Wertz, 3rd ed., eqs. 5-26, 5-27): nadir angle eta = asin(R cos eps / r),
    # Earth central angle lambda = 90 deg - eps - eta.
    alt_m, eps_deg = 550e3, 25.0
    cons = _shell(1, 1, alt_m / 1e3, 53.0, phasing=0)
    tg = TimeGrid.from_utc(EPOCH, duration_s=1, step_s=1)
    r, _ = Propagator(cons, tg.epoch).positions_ecef_m(tg.t_s())
    rs = r[0, 0]
    sub = (
        math.degrees(math.asin(rs[2] / np.linalg.norm(rs))),
        math.degrees(math.atan2(rs[1], rs[0])),
    )
    eta = math.asin(R * math.cos(math.radians(eps_deg)) / np.linalg.norm(rs))
    lam = math.pi / 2 - math.radians(eps_deg) - eta
    box = [sub[1] - 15, sub[0] - 15, sub[1] + 15, sub[0] + 15]
    grid = region_cells(box, 3)
    res = coverage(cons, tg, region=grid, min_elevation_deg=eps_deg, earth_model="sphere")
    covered = res.statistics()["frac_ge1"] == 1.0
    dist = np.array(
        [
            h3.great_circle_distance((la, lo), sub, unit="rads")
            for la, lo in zip(grid.lat_deg, grid.lon_deg, strict=True)
        ]
    )
    clear = np.abs(dist - lam) > 1e-7
    np.testing.assert_array_equal(covered[clear], (dist <= lam)[clear])
    # About 220 cells of ~12,400 km^2 fill the ~2.7e6 km^2 cap.
    assert 150 < covered.sum() < 300


def test_walker_shell_latitude_band() -> None:
    # Sub-satellite latitudes never exceed the inclination, so no cell poleward of
    # i + lambda sees a satellite; cells just equatorward of it do, over a long run.
    inc, alt_km, eps = 53.0, 550.0, 25.0
    cons = _shell(24, 22, alt_km, inc, phasing=1)
    tg = TimeGrid.from_utc(EPOCH, duration_s=6 * 3600, step_s=60)
    r_sat = WGS84_A_M + alt_km * 1e3  # starmesh altitudes are above the equatorial radius
    lam_deg = 90.0 - eps - math.degrees(math.asin(R * math.cos(math.radians(eps)) / r_sat))
    grid = region_cells([-40.0, 40.0, 40.0, 80.0], 2)
    res = coverage(cons, tg, region=grid, min_elevation_deg=eps, earth_model="sphere")
    frac = res.statistics()["frac_ge1"]
    edge = inc + lam_deg
    assert np.all(frac[grid.lat_deg > edge + 0.01] == 0.0)
    assert np.any(frac[grid.lat_deg > edge - 1.0] > 0.0)
    assert grid.lat_deg[frac > 0].max() <= edge
    assert grid.lat_deg[frac > 0].max() > edge - 1.0


def _walker_mean_in_view(n_sats: int, inc_deg: float, lat_deg: float, lam_rad: float) -> float:
    """Expected satellites within lam of a point at latitude lat for a shell uniform in RAAN
    and argument of latitude: sub-satellite latitude density cos(phi) / (pi sqrt(sin^2 i -
    sin^2 phi)) on |phi| < i, uniform in longitude; integrate over the cap."""
    i = math.radians(inc_deg)
    p0 = math.radians(lat_deg)

    def dens(phi: float) -> float:
        return math.cos(phi) / (
            math.pi * math.sqrt(max(math.sin(i) ** 2 - math.sin(phi) ** 2, 1e-300))
        )

    def width(phi: float) -> float:
        # Longitude half-width of the cap at latitude phi (spherical law of cosines).
        x = (math.cos(lam_rad) - math.sin(p0) * math.sin(phi)) / (math.cos(p0) * math.cos(phi))
        return math.acos(min(max(x, -1.0), 1.0))

    lo, hi = max(p0 - lam_rad, -i), min(p0 + lam_rad, i)
    val, _ = integrate.quad(
        lambda phi: dens(phi) * 2 * width(phi) / (2 * math.pi), lo, hi, limit=200
    )
    return n_sats * val


@pytest.mark.parametrize("lat_deg", [0.0, 25.0, 40.0, 48.0, 52.0])
def test_mean_in_view_matches_walker_latitude_density(lat_deg: float) -> None:
    # The analytic density is a long-run average over RAAN and phase; 24 h at 60 s over a ring
    # of 48 cells at one latitude samples it closely: measured within 0.02 % at 0-52 deg (the
    # spread of single-cell means around the ring is up to 1.6 %). Tolerance 0.5 %.
    inc, alt_km, eps = 53.0, 550.0, 25.0
    cons = _shell(72, 22, alt_km, inc, phasing=39)
    tg = TimeGrid.from_utc(EPOCH, duration_s=86_400, step_s=60)
    cells = [h3.latlng_to_cell(lat_deg, lon, 3) for lon in np.arange(-180.0, 180.0, 7.5)]
    grid = CellGrid.from_cells(cells)
    res = coverage(cons, tg, region=grid, min_elevation_deg=eps, earth_model="sphere")
    r_sat = WGS84_A_M + alt_km * 1e3
    lam = math.pi / 2 - math.radians(eps) - math.asin(R * math.cos(math.radians(eps)) / r_sat)
    want = np.mean([_walker_mean_in_view(cons.n_sats, inc, la, lam) for la in grid.lat_deg])
    got = res.statistics()["n_view_mean"].mean()
    assert got == pytest.approx(want, rel=0.005)


# --- disruptions ----------------------------------------------------------------------------------


def test_failures_and_denied_cells() -> None:
    cons = _shell(12, 12, 550.0, 53.0)
    tg = TimeGrid.from_utc(EPOCH, duration_s=1800, step_s=30)
    grid = region_cells("Ukraine", 3)
    base = coverage(cons, tg, region=grid).statistics()
    all_failed = coverage(cons, tg, region=grid, sat_failed=np.ones(cons.n_sats, bool)).statistics()
    assert np.all(all_failed["frac_ge1"] == 0.0)
    assert np.all(all_failed["gap_max_s"] == tg.duration_s)
    # Failing the even satellites removes exactly their share of the counts.
    even = np.arange(cons.n_sats) % 2 == 0
    half = coverage(cons, tg, region=grid, sat_failed=even).statistics()
    vis, _ = _brute_force(cons, tg, grid, 25.0)
    np.testing.assert_allclose(
        half["n_view_mean"], vis[:, :, ~even].sum(axis=2).mean(axis=0), atol=1e-12
    )
    # A (T, S) mask: everything failed during the first half only.
    ts = np.zeros((tg.n_steps, cons.n_sats), bool)
    ts[: tg.n_steps // 2] = True
    timed = coverage(cons, tg, region=grid, sat_failed=ts).statistics()
    np.testing.assert_allclose(
        timed["frac_ge1"], (vis[tg.n_steps // 2 :].sum(axis=2) > 0).sum(axis=0) / tg.n_steps
    )
    # Denied cells (a geofence around Kharkiv): no service there, nothing changes elsewhere.
    fence = Geofence.from_geojson(
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [36.23, 49.99]},
            "properties": {"radius_km": 150},
        }
    )
    den = denied_cells(grid, fence)
    assert 0 < den.sum() < grid.n_cells
    jam = coverage(cons, tg, region=grid, cell_denied=den).statistics()
    assert np.all(jam["frac_ge1"][den] == 0.0)
    np.testing.assert_array_equal(jam["frac_ge1"][~den], base["frac_ge1"][~den])
    tc = np.zeros((tg.n_steps, grid.n_cells), bool)
    tc[::2] = True
    alt = coverage(cons, tg, region=grid, cell_denied=tc).statistics()
    np.testing.assert_allclose(
        alt["frac_ge1"], (vis[1::2].sum(axis=2) > 0).sum(axis=0) / tg.n_steps
    )


# --- outputs --------------------------------------------------------------------------------------


def test_outputs_parquet_geojson_deterministic(tmp_path: object) -> None:
    from pathlib import Path

    out = Path(str(tmp_path))
    cons = _shell(12, 12, 550.0, 53.0)
    tg = TimeGrid.from_utc(EPOCH, duration_s=600, step_s=60)
    res = coverage(cons, tg, region=[-180.0, -10.0, 180.0, 10.0], res=1)
    table = coverage_table(res)
    assert table.num_rows == res.grid.n_cells * len(STATISTICS)
    assert table.column_names == ["cell", "lat_deg", "lon_deg", "statistic", "value"]
    a = write_coverage_parquet(res, out / "a.parquet").read_bytes()
    res2 = coverage(cons, tg, region=[-180.0, -10.0, 180.0, 10.0], res=1)
    b = write_coverage_parquet(res2, out / "b.parquet").read_bytes()
    assert a == b
    back = pq.read_table(out / "a.parquet")
    row = next(r for r in back.to_pylist() if r["statistic"] == "frac_ge1")
    c0 = h3.str_to_int(row["cell"])
    assert row["lat_deg"] == pytest.approx(h3.cell_to_latlng(row["cell"])[0])
    assert row["value"] == res.statistics()["frac_ge1"][np.flatnonzero(res.grid.cells == c0)[0]]
    ga = write_coverage_geojson(res, out / "a.geojson").read_bytes()
    gb = write_coverage_geojson(res2, out / "b.geojson").read_bytes()
    assert ga == gb
    gj = json.loads(ga)
    assert len(gj["features"]) == res.grid.n_cells
    for f in gj["features"]:
        ring = f["geometry"]["coordinates"][0]
        assert ring[0] == ring[-1] and len(ring) >= 6
        assert max(p[0] for p in ring) - min(p[0] for p in ring) < 180.0
        assert set(STATISTICS) <= set(f["properties"])
    assert coverage_geojson(res)["properties"]["h3_res"] == 1


# --- per terminal ---------------------------------------------------------------------------------


def test_terminal_visibility_hand_solved() -> None:
    # One terminal, three satellites, 10-s steps, 15-s slots: slots start at t = 0, 20, 30, 50.
    el = np.radians(
        [
            [30, 40, 0],  # t=0  new slot: best = 1
            [50, 40, 0],  # t=10 same slot, 1 still visible: hold 1
            [50, 45, 0],  # t=20 new slot: switch to 0 (handover)
            [50, 0, 60],  # t=30 new slot: switch to 2 (handover)
            [0, 0, 0],  # t=40 nothing: outage
            [30, 0, 0],  # t=50 regain 0 (no handover)
        ],
        dtype=float,
    )[:, None, :]
    vis = el > 0
    tv = terminal_visibility(vis, el, step_s=10.0, slot_s=15.0)
    np.testing.assert_array_equal(tv.serving[:, 0], [1, 1, 0, 2, -1, 0])
    np.testing.assert_array_equal(tv.n_in_view[:, 0], [2, 2, 2, 2, 0, 1])
    np.testing.assert_array_equal(tv.handover[:, 0], [0, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(tv.handover_intervals_s(0), [10.0])
    assert math.isnan(tv.serving_elevation_rad[4, 0])
    assert tv.serving_elevation_rad[1, 0] == pytest.approx(math.radians(40))
    t = tv.table(["kyiv"])
    assert t.num_rows == 6 and t["serving_elevation_deg"].null_count == 1


# --- regions and bad input ------------------------------------------------------------------------


def test_regions() -> None:
    assert region_cells(None, 0).n_cells == 122
    assert region_cells("earth", 2).n_cells == h3.get_num_cells(2)
    ukr = region_cells("ukr", 3)
    assert ukr.n_cells == region_cells("Ukraine", 3).n_cells > 30
    shp = country_shape("Ukraine")
    from shapely.geometry import Point

    assert all(shp.contains(Point(lo, la)) for la, lo in zip(ukr.lat_deg, ukr.lon_deg, strict=True))
    poly = {"type": "Polygon", "coordinates": [[[30, 45], [40, 45], [40, 52], [30, 52], [30, 45]]]}
    assert region_cells(poly, 3).n_cells == region_cells([30, 45, 40, 52], 3).n_cells


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"region": [30.0, 45.0, 30.1, 45.1], "res": 0},
            r"coverage.region: region 'bbox' contains no H3 cell",
        ),
        ({"region": "Atlantis"}, r"coverage.region: unknown country 'Atlantis'"),
        ({"region": "Ukrain"}, r"did you mean 'Ukraine'"),
        (
            {"region": None, "res": 7},
            r"coverage.res: region 'earth' at H3 resolution 7 holds about 98,825,162 "
            r"cells.*use res <= 4",
        ),
        (
            {"region": None, "res": 3, "max_cell_steps": 1000},
            r"coverage.res: 41,162 cells x 10 steps",
        ),
        (
            {"min_elevation_deg": 90.0},
            r"coverage.min_elevation_deg: must be in \[0, 90\) deg, got 90.0",
        ),
        ({"k": 0}, r"coverage.k: must be an integer >= 1, got 0"),
        (
            {"sat_failed": np.zeros(3, bool)},
            r"coverage.sat_failed: shape \(3,\) matches neither \(144,\)",
        ),
        ({"region": [40.0, 45.0, 30.0, 50.0]}, r"coverage.region: bounding box"),
    ],
)
def test_bad_input_one_line(kwargs: dict[str, object], match: str) -> None:
    cons = _shell(12, 12, 550.0, 53.0)
    tg = TimeGrid.from_utc(EPOCH, duration_s=100, step_s=10)
    with pytest.raises(ScenarioError, match=match) as err:
        coverage(cons, tg, **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(err.value)


def test_terminal_visibility_links_equals_dense() -> None:
    rng = np.random.default_rng(15)
    n_t, n_g, n_s = 40, 7, 9
    el = rng.uniform(-0.3, 1.2, (n_t, n_g, n_s))
    el[:, :, 3] = el[:, :, 4]  # exact ties
    vis = (el > 0.1) & (rng.random((n_t, n_g, n_s)) > 0.2)
    vis[5:8, 0, :] = False  # an outage
    dense = terminal_visibility(vis, el, step_s=5.0, slot_s=15.0, t0_s=10.0)
    t, g, s = np.nonzero(vis)  # sorted by (step, site, satellite): the links' own order
    perm = rng.permutation(t.size)
    for idx in (perm, np.arange(t.size)):  # shuffled (sorted inside) and already in order
        sparse = terminal_visibility_links(
            t[idx], g[idx], s[idx], el[t, g, s][idx],
            n_steps=n_t, n_sites=n_g, step_s=5.0, slot_s=15.0, t0_s=10.0,
        )  # fmt: skip
        np.testing.assert_array_equal(sparse.n_in_view, dense.n_in_view)
        np.testing.assert_array_equal(sparse.serving, dense.serving)
        np.testing.assert_array_equal(sparse.handover, dense.handover)
        np.testing.assert_array_equal(sparse.serving_elevation_rad, dense.serving_elevation_rad)
    assert dense.handovers.sum() > 0 and (dense.serving == -1).any()
    # The tie (satellites 3 and 4 at equal elevation) goes to the lower index, as argmax does.
    tie = (vis[:, :, 3] & vis[:, :, 4]) & (el[:, :, 3] >= el.max(axis=2, where=vis, initial=-9))
    assert tie.any() and (dense.serving[tie & (dense.serving >= 0)] != 4).all()


def test_summary_is_area_weighted() -> None:
    cons = _shell(12, 12, 550.0, 53.0)
    tg = TimeGrid.from_utc(EPOCH, duration_s=600, step_s=60)
    res = coverage(cons, tg, region=None, res=0)
    st = res.statistics()
    area = np.array([h3.cell_area(h3.int_to_str(int(c)), unit="km^2") for c in res.grid.cells])
    assert area.sum() == pytest.approx(4 * math.pi * 6371.007180918475**2, rel=1e-9)
    summ = res.summary()
    assert summ["frac_ge1_mean"] == pytest.approx(np.sum(area * st["frac_ge1"]) / area.sum())
    assert summ["n_view_mean"] == pytest.approx(np.sum(area * st["n_view_mean"]) / area.sum())


def test_real_snapshot_matches_brute_force() -> None:
    # SGP4 elements at a spread of altitudes (raising, operational, decaying satellites).
    from starmesh.elements import load_starlink_snapshot

    snap = load_starlink_snapshot()
    cons = Constellation.from_elements("snap", snap.select(np.arange(0, len(snap), 20)))
    tg = TimeGrid.from_utc("2026-05-13T06:00:00Z", duration_s=300, step_s=30)
    grid = region_cells([20.0, 40.0, 45.0, 56.0], 3)
    res = coverage(cons, tg, region=grid, min_elevation_deg=25.0)
    vis, _ = _brute_force(cons, tg, grid, 25.0)
    n = vis.sum(axis=2)
    st = res.statistics()
    assert n.sum() > 0
    np.testing.assert_allclose(st["n_view_mean"], n.mean(axis=0), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(st["frac_ge1"], (n >= 1).mean(axis=0))


def test_terminal_visibility_continues_across_chunks() -> None:
    rng = np.random.default_rng(7)
    n_t, n_g, n_s = 30, 5, 6
    el = rng.uniform(-0.3, 1.2, (n_t, n_g, n_s))
    vis = el > 0.2
    whole = terminal_visibility(vis, el, step_s=5.0, slot_s=15.0)
    for cut in (7, 9, 12):  # mid-slot and on slot boundaries
        a = terminal_visibility(vis[:cut], el[:cut], step_s=5.0, slot_s=15.0)
        b = terminal_visibility(
            vis[cut:], el[cut:], step_s=5.0, slot_s=15.0, t0_s=cut * 5.0, serving0=a.serving[-1]
        )
        t, g, s = np.nonzero(vis[cut:])
        c = terminal_visibility_links(
            t, g, s, el[cut:][t, g, s], n_steps=n_t - cut, n_sites=n_g, step_s=5.0,
            slot_s=15.0, t0_s=cut * 5.0, serving0=a.serving[-1],
        )  # fmt: skip
        for part in (b, c):
            np.testing.assert_array_equal(np.concatenate([a.serving, part.serving]), whole.serving)
            np.testing.assert_array_equal(
                np.concatenate([a.handover, part.handover]), whole.handover
            )
