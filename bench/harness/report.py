"""Turning measurements into the table, the ratios, the goal check and the chart."""
import json
import os
import shutil
import subprocess

from .datasets import fmt_bytes

GiB = 1 << 30


def summarize(record):
    """Median figures of one contender on one dataset, or None when no run succeeded."""
    good = [s for s in record["samples"] if s["ok"]]
    if not good:
        return None
    walls = sorted(s["wall"] for s in good)
    med = lambda xs: sorted(xs)[(len(xs) - 1) // 2] if len(xs) % 2 else \
        (sorted(xs)[len(xs) // 2 - 1] + sorted(xs)[len(xs) // 2]) / 2
    wall = med(walls)
    ds = record["dataset"]
    return {
        "wall": wall, "min": walls[0], "max": walls[-1], "runs": len(good),
        "bytes_per_s": ds["total_bytes"] / wall, "objects_per_s": ds["count"] / wall,
        "cpu_per_gib": med([s["cpu"] for s in good]) / (ds["total_bytes"] / GiB),
        "rss_mib": max(s["max_rss_kib"] for s in good) / 1024,
        "overfetch": med([s["bytes_served"] for s in good]) / ds["total_bytes"],
    }


def best_of_tool(records, tool):
    """The better (faster) of a peer's default and tuned configurations."""
    best = None
    for r in records:
        s = summarize(r)
        if r["tool"] == tool and s and (best is None or s["wall"] < best[1]["wall"]):
            best = (r, s)
    return best


def format_table(results):
    out = []
    groups = {}
    for r in results["records"]:
        groups.setdefault((r["profile"], r["network"], r["dataset"]["name"]), []).append(r)
    for (profile, network, name), records in groups.items():
        ds = records[0]["dataset"]
        ceiling = results["ceilings"].get(f"{profile}/{network}/{name}")
        head = f"== {name}: {ds['describe']} ({fmt_bytes(ds['total_bytes'])}) | server {profile}" \
               f" | network {network}"
        if ceiling:
            head += f" | ceiling {ceiling['bytes_per_s'] / 2**20:,.0f} MiB/s, " \
                    f"{ceiling['objects_per_s']:,.0f} obj/s ({ceiling['streams']} streams)"
        out.append(head)
        out.append(f"{'tool':<22} {'median s':>9} {'min-max':>13} {'MiB/s':>8} {'obj/s':>8} "
                   f"{'%ceil':>6} {'CPU s/GiB':>10} {'RSS MiB':>8} {'fetched':>8}")
        for r in records:
            s = summarize(r)
            if s is None:
                err = next((x["error"] for x in r["samples"] if not x["ok"]), "no run")
                out.append(f"{r['label']:<22} failed: {err}")
                continue
            pct = 100 * s["bytes_per_s"] / ceiling["bytes_per_s"] if ceiling else float("nan")
            runs = "" if s["runs"] >= 3 else f" (n={s['runs']})"
            out.append(f"{r['label']:<22} {s['wall']:>9.2f} {s['min']:>6.2f}-{s['max']:<6.2f} "
                       f"{s['bytes_per_s'] / 2**20:>8.0f} {s['objects_per_s']:>8.0f} "
                       f"{pct:>5.0f}% {s['cpu_per_gib']:>10.2f} {s['rss_mib']:>8.0f} "
                       f"{s['overfetch']:>7.2f}x{runs}")
        tf = best_of_tool(records, "trainfeed")
        if tf:
            ratios = []
            for tool in ("aws-cli", "rclone", "s3cmd"):
                peer = best_of_tool(records, tool)
                if peer:
                    ratios.append(f"{peer[1]['wall'] / tf[1]['wall']:.2f}x {tool} "
                                  f"({peer[0]['variant']})")
            out.append("trainfeed speed / best peer config: " + ", ".join(ratios))
        out.append("")
    return "\n".join(out)


# The File-mode goals of the benchmark issue: (dataset, what, threshold).
def check_goals(results):
    lines = []
    groups = {}
    for r in results["records"]:
        groups.setdefault((r["profile"], r["network"], r["dataset"]["name"]), []).append(r)

    def verdict(ok, text):
        lines.append(("PASS " if ok else "MISS ") + text)

    for (profile, network, name), records in groups.items():
        where = f"[{profile}/{network}] {name}:"
        tf = best_of_tool(records, "trainfeed")
        if not tf:
            continue
        tfs = tf[1]
        speedup = lambda tool: (best_of_tool(records, tool)[1]["wall"] / tfs["wall"]
                                if best_of_tool(records, tool) else None)
        aws, rclone = speedup("aws-cli"), speedup("rclone")
        ceiling = results["ceilings"].get(f"{profile}/{network}/{name}")
        if name == "L":
            if aws:
                verdict(aws >= 4, f"{where} {aws:.2f}x aws cli (goal >= 4x)")
            if rclone:
                verdict(rclone >= 1.5, f"{where} {rclone:.2f}x rclone (goal >= 1.5x)")
            if ceiling:
                f = tfs["bytes_per_s"] / ceiling["bytes_per_s"]
                verdict(f >= 0.75, f"{where} {f:.2f} of the server ceiling (goal >= 0.75)")
            peers = [best_of_tool(records, t) for t in ("aws-cli", "rclone", "s3cmd")]
            cpu = [p[1]["cpu_per_gib"] for p in peers if p]
            if cpu:
                verdict(tfs["cpu_per_gib"] <= 0.5 * min(cpu),
                        f"{where} {tfs['cpu_per_gib']:.2f} CPU s/GiB vs best peer {min(cpu):.2f}"
                        " (goal <= 0.5x)")
        elif name in ("S", "S2k"):
            if aws:
                verdict(aws >= 8, f"{where} {aws:.2f}x aws cli objects/s (goal >= 8x)")
            if rclone:
                verdict(rclone >= 2, f"{where} {rclone:.2f}x rclone objects/s (goal >= 2x)")
        elif name == "T":
            peers = [speedup(t) for t in ("aws-cli", "rclone", "s3cmd") if speedup(t)]
            if peers:
                verdict(min(peers) >= 1, f"{where} {min(peers):.2f}x the best peer (goal >= 1x)")
    rss = {}
    for r in results["records"]:
        s = summarize(r)
        if r["tool"] == "trainfeed" and s and r["dataset"]["name"] in ("S", "S2k"):
            rss[(r["profile"], r["network"], r["dataset"]["name"])] = s["rss_mib"]
    for (profile, network, name), big in rss.items():
        small = rss.get((profile, network, "S2k"))
        if name == "S" and small:
            verdict(big <= small * 1.25 + 8,
                    f"[{profile}/{network}] peak RSS S {big:.0f} MiB vs S2k {small:.0f} MiB "
                    "(goal: flat as the count grows 8x)")
    return "\n".join(lines)


def write_chart(results, png_path):
    """Throughput as a fraction of the server ceiling, one panel per server/network, a cluster of
    bars per dataset. Needs gnuplot; returns False when it is missing."""
    if not shutil.which("gnuplot"):
        return False
    base = os.path.splitext(png_path)[0]
    panels, labels = {}, []
    for r in results["records"]:
        s = summarize(r)
        key = (r["profile"], r["network"])
        ceiling = results["ceilings"].get(f"{r['profile']}/{r['network']}/{r['dataset']['name']}")
        frac = s["bytes_per_s"] / ceiling["bytes_per_s"] if s and ceiling else 0
        panels.setdefault(key, {}).setdefault(r["dataset"]["name"], {})[r["label"]] = frac
        if r["label"] not in labels:
            labels.append(r["label"])
    script = [f"set terminal pngcairo size 1400,{380 * len(panels)} font 'sans,10'",
              f"set output '{png_path}'", f"set multiplot layout {len(panels)},1",
              "set style data histograms", "set style histogram clustered gap 1",
              "set style fill solid 0.9 border -1", "set boxwidth 0.9", "set yrange [0:*]",
              "set ylabel 'fraction of server ceiling'", "set grid ytics", "set key outside right"]
    for i, ((profile, network), datasets) in enumerate(panels.items()):
        data = f"{base}-{i}.dat"
        with open(data, "w") as f:
            f.write("dataset " + " ".join(f'"{l}"' for l in labels) + "\n")
            for name, by_label in datasets.items():
                f.write(name + " " + " ".join(f"{by_label.get(l, 0):.3f}" for l in labels) + "\n")
        script.append(f"set title 'File mode: server {profile}, network {network}'")
        cols = ", ".join(f"'{data}' using {j + 2}:xtic(1) title columnhead({j + 2})" if j == 0
                         else f"'' using {j + 2} title columnhead({j + 2})"
                         for j in range(len(labels)))
        script.append("plot " + cols)
    script.append("unset multiplot")
    subprocess.run(["gnuplot"], input="\n".join(script), text=True, check=True)
    return True


def save(results, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)


# ---- FastFile mode ----

def _median(values):
    xs = sorted(values)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


HIGHER_IS_BETTER = {"seq": True, "small": True, "epoch2": True, "list": False, "ttfb": False}


def summarize_fastfile(record):
    """Median, min and max of one FastFile record's value, with the daemon's CPU per GiB read,
    its peak RSS and the over-fetch; None when no run succeeded."""
    good = [s for s in record["samples"] if s["ok"]]
    if not good:
        return None
    values = sorted(s["value"] for s in good)
    out = {"value": _median(values), "min": values[0], "max": values[-1], "runs": len(good),
           "cpu_per_gib": None, "rss_mib": None, "fetched": None}
    read = [s for s in good if s.get("bytes")]
    if read:
        out["cpu_per_gib"] = _median([s["cpu"] / (s["bytes"] / GiB) for s in read])
        served = [s["bytes_served"] / s["bytes"] for s in read if s.get("bytes_served")]
        out["fetched"] = _median(served) if served else None
    rss = [s.get("rss_kib", 0) for s in good]
    if any(rss):
        out["rss_mib"] = max(rss) / 1024
    return out


def _fastfile_groups(results):
    groups = {}
    for r in results.get("fastfile", {}).get("records", []):
        groups.setdefault((r["profile"], r["network"]), []).append(r)
    return groups


def _find(records, workload, label):
    return next((r for r in records if r["workload"] == workload and r["label"] == label), None)


def _best_peer(records, workload, tool):
    """The better of a peer's configurations on one workload: (record, summary) or None."""
    best = None
    higher = HIGHER_IS_BETTER[workload]
    for r in records:
        if r["workload"] != workload or r["tool"] != tool or r["reference"]:
            continue
        s = summarize_fastfile(r)
        if s and (best is None or (s["value"] > best[1]["value"]) == higher
                  and s["value"] != best[1]["value"]):
            best = (r, s)
    return best


def _speedup(workload, tf_value, peer_value):
    """How many times faster trainfeed is (above 1: trainfeed wins), for rates and times alike."""
    return tf_value / peer_value if HIGHER_IS_BETTER[workload] else peer_value / tf_value


def _cell(s, scale, digits, width, total_runs=3):
    if s is None:
        return f"{'-':<{width}}"
    f = lambda v: f"{v * scale:,.{digits}f}"
    text = f(s["value"]) if s["runs"] == 1 or f(s["min"]) == f(s["max"]) else \
        f"{f(s['value'])} [{f(s['min'])}-{f(s['max'])}]"
    if s["runs"] < total_runs:
        text += f" n={s['runs']}"
    return f"{text:<{width}}"


def fastfile_ceilings(results, profile, network):
    """(server ceiling of XL in bytes/s, of S in objects/s, null FUSE bytes/s); None if unknown."""
    xl = results["ceilings"].get(f"{profile}/{network}/XL")
    small = results["ceilings"].get(f"{profile}/{network}/S")
    fuse = results.get("fastfile", {}).get("fuse_ceiling")
    return (xl["bytes_per_s"] if xl else None, small["objects_per_s"] if small else None,
            fuse["bytes_per_s"] if fuse else None)


COLUMNS = [("seq", "seq MiB/s", 1 / 2**20, 0), ("small", "small files/s", 1, 0),
           ("list", "list s", 1, 2), ("ttfb", "ttfb ms", 1000, 1), ("epoch2", "epoch2 MiB/s",
                                                                     1 / 2**20, 0)]


def format_fastfile_table(results):
    ff = results.get("fastfile")
    if not ff:
        return ""
    out = []
    sets = ff["datasets"]
    for (profile, network), records in _fastfile_groups(results).items():
        xl, small, fuse = fastfile_ceilings(results, profile, network)
        seq_ceiling = min(x for x in (xl, fuse) if x) if (xl or fuse) else None
        out.append(f"== FastFile | server {profile} | network {network} | seq, ttfb, epoch2: XL "
                   f"{sets['XL']['describe']}; small: S {sets['S']['describe']} "
                   f"({ff['small_threads']} threads); list: T {sets['T']['describe']}")
        parts = []
        if xl:
            parts.append(f"server XL {xl / 2**20:,.0f} MiB/s")
        if small:
            parts.append(f"server S {small:,.0f} obj/s")
        if fuse:
            parts.append(f"null FUSE {fuse / 2**20:,.0f} MiB/s")
        out.append("ceilings: " + ", ".join(parts) + " | %ceil: seq of min(server, FUSE), "
                   "small of the server's obj/s; %FUSE: epoch2 of the FUSE ceiling")
        widths = {"seq": 22, "small": 20, "list": 20, "ttfb": 20, "epoch2": 22}
        head = f"{'tool':<20} "
        for w, title, _, _ in COLUMNS:
            head += f"{title:<{widths[w]}} " + ("%ceil  " if w in ("seq", "small") else "") + \
                ("%FUSE" if w == "epoch2" else "")
        out.append(head.rstrip())
        labels = []
        for r in records:
            if r["label"] not in labels:
                labels.append(r["label"])
        for label in labels:
            line = f"{label:<20} "
            for w, _, scale, digits in COLUMNS:
                rec = _find(records, w, label)
                s = summarize_fastfile(rec) if rec else None
                if rec and s is None:
                    line += f"{'failed (below)':<{widths[w]}} "
                else:
                    line += _cell(s, scale, digits, widths[w]) + " "
                if w == "seq":
                    line += f"{100 * s['value'] / seq_ceiling:4.0f}%  " if s and seq_ceiling \
                        else "       "
                if w == "small":
                    line += f"{100 * s['value'] / small:4.0f}%  " if s and small else "       "
                if w == "epoch2":
                    line += f"{100 * s['value'] / fuse:4.0f}%" if s and fuse else ""
            out.append(line.rstrip())
        for label in labels:
            for w, _, _, _ in COLUMNS:
                rec = _find(records, w, label)
                if rec and summarize_fastfile(rec) is None:
                    err = next((x["error"] for x in rec["samples"] if not x["ok"]), "no run")
                    out.append(f"  ! {label} {w} failed: {err}")
        # Resources of the mount daemons.
        out.append(f"{'daemon':<20} {'CPU s/GiB seq':>14} {'CPU s/GiB small':>16} "
                   f"{'peak RSS MiB':>13} {'fetched seq':>12}")
        for label in labels:
            recs = [r for r in records if r["label"] == label and not r["reference"]]
            if not recs:
                continue
            seq = summarize_fastfile(_find(records, "seq", label) or {"samples": []})
            sm = summarize_fastfile(_find(records, "small", label) or {"samples": []})
            rss = [s["rss_mib"] for s in map(summarize_fastfile, recs) if s and s["rss_mib"]]
            fmt = lambda v, w, d: f"{v:>{w}.{d}f}" if v is not None else f"{'-':>{w}}"
            out.append(f"{label:<20} {fmt(seq and seq['cpu_per_gib'], 14, 2)} "
                       f"{fmt(sm and sm['cpu_per_gib'], 16, 2)} "
                       f"{fmt(max(rss) if rss else None, 13, 0)} "
                       f"{fmt(seq and seq['fetched'], 11, 2)}{'x' if seq and seq['fetched'] else ''}")
        ratios = []
        for w, _, _, _ in COLUMNS:
            tf = _find(records, w, "trainfeed" if w != "epoch2" else "trainfeed (cache)")
            tfs = summarize_fastfile(tf) if tf else None
            if not tfs:
                continue
            parts = []
            for tool in ("s3fs", "rclone mount"):
                peer = _best_peer(records, w, tool)
                if peer:
                    parts.append(f"{_speedup(w, tfs['value'], peer[1]['value']):.2f}x "
                                 f"{peer[0]['label']}")
            if parts:
                ratios.append(f"{w} " + ", ".join(parts))
        if ratios:
            out.append("trainfeed speed / best peer config: " + "; ".join(ratios))
        out.append("")
    return "\n".join(out)


# The FastFile goals of the benchmark issue.
def check_fastfile_goals(results):
    ff = results.get("fastfile")
    if not ff:
        return ""
    lines = []

    def verdict(ok, text):
        lines.append(("PASS " if ok else "MISS ") + text)

    for (profile, network), records in _fastfile_groups(results).items():
        where = f"[{profile}/{network}] FastFile"
        xl, small, fuse = fastfile_ceilings(results, profile, network)
        summary = lambda w, label: summarize_fastfile(_find(records, w, label) or
                                                      {"samples": []})
        tf = {w: summary(w, "trainfeed") for w in HIGHER_IS_BETTER}

        def versus(w, tool, goal, what):
            peer = _best_peer(records, w, tool)
            if tf[w] and peer:
                x = _speedup(w, tf[w]["value"], peer[1]["value"])
                verdict(x >= goal, f"{where} {w}: {x:.2f}x {peer[0]['label']} {what}"
                                   f"(goal >= {goal:g}x)")

        versus("seq", "s3fs", 3, "")
        versus("seq", "rclone mount", 1.5, "")
        if tf["seq"] and (xl or fuse):
            limit = min(x for x in (xl, fuse) if x)
            f = tf["seq"]["value"] / limit
            verdict(f >= 0.7, f"{where} seq: {tf['seq']['value'] / 2**20:,.0f} MiB/s = {f:.2f} "
                              f"of min(server {xl / 2**20 if xl else float('nan'):,.0f}, FUSE "
                              f"{fuse / 2**20 if fuse else float('nan'):,.0f} MiB/s) "
                              "(goal >= 0.7)")
        versus("small", "s3fs", 5, "files/s ")
        versus("small", "rclone mount", 3, "files/s ")
        aws = summary("list", "aws s3 ls")
        if tf["list"] and aws:
            x = tf["list"]["value"] / aws["value"]
            verdict(x <= 1.5, f"{where} list: mount + find {tf['list']['value']:.2f} s = {x:.2f}x "
                              f"aws s3 ls --recursive {aws['value']:.2f} s (goal <= 1.5x)")
        snap = summary("list", "trainfeed (snapshot)")
        if snap:
            verdict(snap["value"] <= 0.2, f"{where} list from a snapshot: mount + find "
                                          f"{1000 * snap['value']:.0f} ms (goal <= 200 ms)")
        raw = summary("ttfb", "raw GET")
        if tf["ttfb"] and raw:
            x = tf["ttfb"]["value"] / raw["value"]
            verdict(x <= 1.3, f"{where} ttfb: {1000 * tf['ttfb']['value']:.1f} ms = {x:.2f}x a "
                              f"raw GET's {1000 * raw['value']:.1f} ms (goal <= 1.3x)")
        if "epoch2" in ff.get("workloads", []):
            cached = summary("epoch2", "trainfeed (cache)")
            if cached and fuse:
                f = cached["value"] / fuse
                verdict(f >= 0.8, f"{where} epoch2: trainfeed --cache second read "
                                  f"{cached['value'] / 2**20:,.0f} MiB/s = {f:.2f} of the FUSE "
                                  "ceiling (goal >= 0.8)")
            elif not ff.get("cache_flags"):
                lines.append(f"SKIP {where} epoch2: `trainfeed mount --help` lists no --cache "
                             "(goal >= 0.8 of the FUSE ceiling not measured)")
        limit_mib = ff["memory_limit_bytes"] / 2**20
        for label in dict.fromkeys(r["label"] for r in records
                                   if r["tool"] == "trainfeed" and not r["reference"]):
            rss = [s["rss_mib"] for s in (summarize_fastfile(r) for r in records
                                          if r["label"] == label) if s and s["rss_mib"]]
            if rss:
                verdict(max(rss) <= limit_mib + 64,
                        f"{where} peak RSS {label} {max(rss):,.0f} MiB (goal <= memory limit "
                        f"{limit_mib:,.0f} + 64 MiB)")
    return "\n".join(lines)


def write_fastfile_chart(results, png_path):
    """Each contender's FastFile results as a fraction of their ceiling or reference: seq of
    min(server, null FUSE), small of the server's objects/s, epoch2 of the null FUSE ceiling,
    list and ttfb as the reference's time over the contender's. One panel per server/network.
    Needs gnuplot; returns False when it is missing or there is nothing to plot."""
    groups = _fastfile_groups(results)
    if not shutil.which("gnuplot") or not groups:
        return False
    base = os.path.splitext(png_path)[0]
    labels = []
    for records in groups.values():
        for r in records:
            if not r["reference"] and r["label"] not in labels:
                labels.append(r["label"])
    script = [f"set terminal pngcairo size 1400,{380 * len(groups)} font 'sans,10'",
              f"set output '{png_path}'", f"set multiplot layout {len(groups)},1",
              "set style data histograms", "set style histogram clustered gap 1",
              "set style fill solid 0.9 border -1", "set boxwidth 0.9", "set yrange [0:*]",
              "set ylabel 'fraction of ceiling / reference'", "set grid ytics",
              "set key outside right"]
    for i, ((profile, network), records) in enumerate(groups.items()):
        xl, small, fuse = fastfile_ceilings(results, profile, network)
        seq_ceiling = min(x for x in (xl, fuse) if x) if (xl or fuse) else None
        ref = lambda w, label: summarize_fastfile(_find(records, w, label) or {"samples": []})
        aws, raw = ref("list", "aws s3 ls"), ref("ttfb", "raw GET")
        base_of = {"seq": seq_ceiling, "small": small, "epoch2": fuse,
                   "list": aws and aws["value"], "ttfb": raw and raw["value"]}
        data = f"{base}-{i}.dat"
        with open(data, "w") as f:
            f.write("workload " + " ".join(f'"{l}"' for l in labels) + "\n")
            for w in ("seq", "small", "list", "ttfb", "epoch2"):
                row = []
                for label in labels:
                    rec = _find(records, w, label)
                    s = summarize_fastfile(rec) if rec else None
                    b = base_of[w]
                    v = 0 if not s or not b else (s["value"] / b if HIGHER_IS_BETTER[w]
                                                  else b / s["value"])
                    row.append(f"{v:.3f}")
                f.write(w + " " + " ".join(row) + "\n")
        script.append(f"set title 'FastFile mode: server {profile}, network {network}'")
        script.append("plot " + ", ".join(
            f"'{data}' using {j + 2}:xtic(1) title columnhead({j + 2})" if j == 0
            else f"'' using {j + 2} title columnhead({j + 2})" for j in range(len(labels))))
    script.append("unset multiplot")
    subprocess.run(["gnuplot"], input="\n".join(script), text=True, check=True)
    return True
