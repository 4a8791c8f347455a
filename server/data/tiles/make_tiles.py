#!/usr/bin/env python3
"""Tile-grid map layout: one equal square tile per county of a province.

How it works: every county's seat (server/data/tiles/seats-<province>.csv: code, lat,
lng, source) is projected with a plain equirectangular projection whose x is scaled by
cos(mean latitude), north up, scaled to the grid's width (--max-cols) with the rows
squeezed if needed (--max-rows). Seats are far denser around Hohhot and Baotou than in
the desert and forest counties, so the points are first relaxed like a small force
layout: any two closer than one cell push each other apart, each county's four nearest
seats pull it back when they drift more than a cell away (this closes the empty
stretches of the sparse parts), a spring pulls each point towards its own seat and a
weaker one towards its city's centroid (so a city's counties stay together). The
relaxed points then get integer cells by an exact minimum-cost assignment (Hungarian
method, cost = squared distance from point to cell), so no two counties share a cell.
Last, a hill-climb moves a tile to another cell or swaps two tiles whenever that joins a
city's tiles into one 4-connected block, makes the map more compact (more adjacent tile
pairs, fewer holes) or brings a tile nearer its relaxed point. The grid is then trimmed to
its used rows/columns and written as tiles-<province>.csv (code,row,col; row 0 is the
northern edge, col 0 the western). Deterministic (no randomness), standard library only;
it prints the grid as 2-digit city indexes and checks its own output.

Usage: python3 server/data/tiles/make_tiles.py [--province 150000]
"""
import argparse
import csv
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.dirname(HERE)


def read_inputs(province):
    regions = list(csv.DictReader(open(os.path.join(DATA, f"regions-{province}.csv"), encoding="utf-8")))
    counties = [r["code"] for r in regions if r["code"] != province and not r["code"].endswith("00")]
    seats = {r["code"]: r for r in csv.DictReader(open(os.path.join(HERE, f"seats-{province}.csv"), encoding="utf-8"))}
    missing = [c for c in counties if c not in seats]
    if missing:
        sys.exit(f"no seat coordinates for {missing}")
    extra = [c for c in seats if c not in counties]
    if extra:
        sys.exit(f"seats for codes not in regions-{province}.csv: {extra}")
    pts = {}
    for c in counties:
        s = seats[c]
        if not (s["source"].startswith("geonames") or s["source"] == "approx"):
            sys.exit(f"{c}: unknown source {s['source']!r}")
        pts[c] = (float(s["lat"]), float(s["lng"]))
    return counties, pts


def city_of(code):
    return code[:4] + "00"


def project(counties, pts, max_cols, max_rows, fill_x, fill_y):
    lat0 = sum(p[0] for p in pts.values()) / len(pts)
    k = math.cos(math.radians(lat0))
    xy = {c: (pts[c][1] * k, -pts[c][0]) for c in counties}  # y grows southwards
    xs = [p[0] for p in xy.values()]
    ys = [p[1] for p in xy.values()]
    # leave room for the relaxation to spread the dense parts: the raw projection spans
    # fill_x of the columns and fill_y of the rows (one scale for both unless that would
    # not fit; then y is squeezed, keeping the map wide as the province is)
    sx = fill_x * (max_cols - 1) / (max(xs) - min(xs))
    sy = min(sx, fill_y * (max_rows - 1) / (max(ys) - min(ys)))
    return {c: ((x - min(xs)) * sx, (y - min(ys)) * sy) for c, (x, y) in xy.items()}


def relax(counties, home, iters=600, min_d=1.05, k_home=0.02, k_city=0.01, k_nb=0.0, nb=4, nb_len=1.0):
    pos = dict(home)
    cities = sorted({city_of(c) for c in counties})
    # each county's nb nearest seats are its neighbours; a spring pulls neighbours that
    # drift further apart than nb_len cells back together (closes gaps in sparse parts)
    edges = set()
    for a in counties:
        near = sorted((b for b in counties if b != a),
                      key=lambda b: (home[a][0] - home[b][0]) ** 2 + (home[a][1] - home[b][1]) ** 2)[:nb]
        edges |= {tuple(sorted((a, b))) for b in near}
    edges = sorted(edges)
    for _ in range(iters):
        cen = {}
        for ci in cities:
            m = [pos[c] for c in counties if city_of(c) == ci]
            cen[ci] = (sum(p[0] for p in m) / len(m), sum(p[1] for p in m) / len(m))
        d = {c: [0.0, 0.0] for c in counties}
        for i, a in enumerate(counties):
            ax, ay = pos[a]
            for b in counties[i + 1:]:
                bx, by = pos[b]
                dx, dy = ax - bx, ay - by
                r = math.hypot(dx, dy)
                if r < min_d:
                    if r < 1e-9:  # identical points: separate deterministically
                        dx, dy, r = 1e-3 * (1 + i % 3), 1e-3, 1.5e-3
                    push = (min_d - r) / 2
                    d[a][0] += dx / r * push
                    d[a][1] += dy / r * push
                    d[b][0] -= dx / r * push
                    d[b][1] -= dy / r * push
        for a, b in edges:
            dx, dy = pos[b][0] - pos[a][0], pos[b][1] - pos[a][1]
            r = math.hypot(dx, dy)
            if r > nb_len:
                pull = k_nb * (r - nb_len) / 2
                d[a][0] += dx / r * pull
                d[a][1] += dy / r * pull
                d[b][0] -= dx / r * pull
                d[b][1] -= dy / r * pull
        for c in counties:
            hx, hy = home[c]
            cx, cy = cen[city_of(c)]
            x, y = pos[c]
            x += d[c][0] + k_home * (hx - x) + k_city * (cx - x)
            y += d[c][1] + k_home * (hy - y) + k_city * (cy - y)
            pos[c] = (x, y)
    return pos


def hungarian(cost):
    """Minimum-cost assignment of n rows to m >= n columns. Returns col index per row."""
    n, m = len(cost), len(cost[0])
    INF = float("inf")
    u = [0.0] * (n + 1)
    v = [0.0] * (m + 1)
    p = [0] * (m + 1)
    way = [0] * (m + 1)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = [INF] * (m + 1)
        used = [False] * (m + 1)
        while True:
            used[j0] = True
            i0 = p[j0]
            delta = INF
            j1 = 0
            row = cost[i0 - 1]
            for j in range(1, m + 1):
                if not used[j]:
                    cur = row[j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j] = cur
                        way[j] = j0
                    if minv[j] < delta:
                        delta = minv[j]
                        j1 = j
            for j in range(m + 1):
                if used[j]:
                    u[p[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while True:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
            if j0 == 0:
                break
    res = [0] * n
    for j in range(1, m + 1):
        if p[j]:
            res[p[j] - 1] = j - 1
    return res


def assign(counties, pos, margin=2):
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    x0, y0 = math.floor(min(xs)) - margin, math.floor(min(ys)) - margin
    x1, y1 = math.ceil(max(xs)) + margin, math.ceil(max(ys)) + margin
    cells = [(r, c) for r in range(y0, y1 + 1) for c in range(x0, x1 + 1)]
    cost = [[(pos[k][0] - c) ** 2 + (pos[k][1] - r) ** 2 for (r, c) in cells] for k in counties]
    sol = hungarian(cost)
    return {k: cells[j] for k, j in zip(counties, sol)}


def components(cells):
    """Number of 4-connected components of a set of (row, col)."""
    cells = set(cells)
    seen = set()
    n = 0
    for s in cells:
        if s in seen:
            continue
        n += 1
        stack = [s]
        seen.add(s)
        while stack:
            r, c = stack.pop()
            for q in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if q in cells and q not in seen:
                    seen.add(q)
                    stack.append(q)
    return n


def score(counties, cell, pos, w_split=40.0, w_adj=3.0, w_same=1.0):
    """Lower is better: split cities, distance from the relaxed points, and (as rewards)
    occupied neighbour pairs (a compact map without holes) and same-city neighbour pairs
    (compact city blocks)."""
    by_city = {}
    for k in counties:
        by_city.setdefault(city_of(k), []).append(cell[k])
    split = sum(components(v) - 1 for v in by_city.values())
    disp = sum((pos[k][0] - cell[k][1]) ** 2 + (pos[k][1] - cell[k][0]) ** 2 for k in counties)
    at = {v: city_of(k) for k, v in cell.items()}
    adj = same = 0
    for (r, c), ci in at.items():
        for q in ((r + 1, c), (r, c + 1)):
            if q in at:
                adj += 1
                same += at[q] == ci
    return w_split * split + disp - w_adj * adj - w_same * same, split


def improve(counties, cell, pos, max_rows, max_cols, weights):
    """Hill-climb: move a tile to another cell (within 3 cells, or next to a tile of its own
    city) or swap it with the tile there, whenever that lowers score(); until no move does."""
    best, _ = score(counties, cell, pos, **weights)
    improved = True
    while improved:
        improved = False
        for k in counties:
            occupied = {v: kk for kk, v in cell.items()}
            rows = [v[0] for v in cell.values()]
            cols = [v[1] for v in cell.values()]
            r0, r1, c0, c1 = min(rows), max(rows), min(cols), max(cols)
            r, c = cell[k]
            cand = {(r + dr, c + dc) for dr in range(-3, 4) for dc in range(-3, 4)}
            for kk, (rr, cc) in cell.items():
                if city_of(kk) == city_of(k):
                    cand |= {(rr + 1, cc), (rr - 1, cc), (rr, cc + 1), (rr, cc - 1)}
            cand.discard((r, c))
            for q in sorted(cand):
                if max(r1, q[0]) - min(r0, q[0]) + 1 > max_rows or max(c1, q[1]) - min(c0, q[1]) + 1 > max_cols:
                    continue
                other = occupied.get(q)
                cell[k] = q
                if other:
                    cell[other] = (r, c)
                s, _ = score(counties, cell, pos, **weights)
                if s < best - 1e-9:
                    best = s
                    improved = True
                    break
                cell[k] = (r, c)
                if other:
                    cell[other] = q
    return cell


def holes(cell):
    """Empty cells with at least three occupied 4-neighbours."""
    occ = set(cell.values())
    rows = [v[0] for v in occ]
    cols = [v[1] for v in occ]
    n = 0
    for r in range(min(rows), max(rows) + 1):
        for c in range(min(cols), max(cols) + 1):
            if (r, c) not in occ and sum(q in occ for q in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1))) >= 3:
                n += 1
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--province", default="150000")
    ap.add_argument("--max-cols", type=int, default=24)
    ap.add_argument("--max-rows", type=int, default=16)
    ap.add_argument("--fill-x", type=float, default=1.0, help="share of the columns the raw projection spans")
    ap.add_argument("--fill-y", type=float, default=0.7, help="share of the rows the raw projection spans, at most")
    ap.add_argument("--k-home", type=float, default=0.05, help="spring to the own seat")
    ap.add_argument("--k-city", type=float, default=0.01, help="spring to the city centroid")
    ap.add_argument("--min-d", type=float, default=1.05, help="closest two points may be, in cells")
    ap.add_argument("--k-nb", type=float, default=0.05, help="spring between neighbouring seats")
    ap.add_argument("--nb-len", type=float, default=1.0, help="rest length of that spring, in cells")
    ap.add_argument("--w-adj", type=float, default=3.0, help="reward per pair of adjacent tiles")
    ap.add_argument("--w-same", type=float, default=1.0, help="reward per pair of adjacent tiles of one city")
    a = ap.parse_args()
    counties, pts = read_inputs(a.province)
    home = project(counties, pts, a.max_cols, a.max_rows, a.fill_x, a.fill_y)
    pos = relax(counties, home, min_d=a.min_d, k_home=a.k_home, k_city=a.k_city, k_nb=a.k_nb, nb_len=a.nb_len)
    cell = assign(counties, pos)
    cell = improve(counties, cell, pos, a.max_rows, a.max_cols, dict(w_adj=a.w_adj, w_same=a.w_same))
    r0 = min(v[0] for v in cell.values())
    c0 = min(v[1] for v in cell.values())
    cell = {k: (r - r0, c - c0) for k, (r, c) in cell.items()}
    rows = max(v[0] for v in cell.values()) + 1
    cols = max(v[1] for v in cell.values()) + 1
    if rows > a.max_rows or cols > a.max_cols:
        sys.exit(f"layout is {rows}x{cols}, larger than {a.max_rows}x{a.max_cols}")
    assert len(set(cell.values())) == len(cell)
    out = os.path.join(DATA, f"tiles-{a.province}.csv")
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["code", "row", "col"])
        for k in counties:
            w.writerow([k, cell[k][0], cell[k][1]])
    split = []
    for ci in sorted({city_of(k) for k in counties}):
        n = components([cell[k] for k in counties if city_of(k) == ci])
        if n > 1:
            split.append(f"{ci} ({n} parts)")
    cities = sorted({city_of(k) for k in counties})
    idx = {ci: i for i, ci in enumerate(cities)}
    grid = [["  "] * cols for _ in range(rows)]
    for k, (r, c) in cell.items():
        grid[r][c] = "%02d" % idx[city_of(k)]
    print(f"{out}: {len(cell)} tiles, {rows} rows x {cols} cols, cities split: {', '.join(split) or 'none'}")
    for line in grid:
        print(" ".join(line).rstrip())
    print("  ".join(f"{i:02d}={ci}" for ci, i in idx.items()))
    print("neighbour kept: %.2f, holes: %d" % (neighbour_kept(counties, pts, cell), holes(cell)))


def neighbour_kept(counties, pts, cell, k=4):
    """Share of each county's k geographically nearest counties that are within one
    cell (8-neighbourhood) of it on the grid."""
    lat0 = sum(p[0] for p in pts.values()) / len(pts)
    kx = math.cos(math.radians(lat0))
    kept = 0
    for a in counties:
        near = sorted((b for b in counties if b != a),
                      key=lambda b: ((pts[a][1] - pts[b][1]) * kx) ** 2 + (pts[a][0] - pts[b][0]) ** 2)[:k]
        kept += sum(max(abs(cell[a][0] - cell[b][0]), abs(cell[a][1] - cell[b][1])) <= 1 for b in near)
    return kept / (k * len(counties))


if __name__ == "__main__":
    main()
