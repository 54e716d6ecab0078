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
