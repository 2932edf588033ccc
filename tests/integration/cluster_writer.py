#!/usr/bin/env python3
# tests/integration/cluster_writer.py - the writer and checker of the partition suite
# (test_cluster_partition.sh). Each box's writer writes self-describing 4 KiB blocks to its own
# half of one volume through its own mount, fdatasync after each, and journals every
# acknowledged write with the box and the time; through faults it retries (reopening the file
# when its daemon was restarted). The checker finds acknowledged writes missing from a replica
# and acknowledgements by both boxes inside a window where only one may serve (split brain).
#
#   cluster_writer.py run    FILE BOX FIRST COUNT JOURNAL CONTROL_DIR
#   cluster_writer.py verify FILE JOURNAL...
#   cluster_writer.py split  WINDOWS JOURNAL...      (WINDOWS: lines "START END AFTER LABEL")
#   cluster_writer.py failover JOURNAL T0            (first ack of a write started after T0,
#                                                    minus T0: the fault's outage as seen)
#
# CONTROL_DIR/pause: while it exists the writer issues nothing and touches CONTROL_DIR/paused.BOX;
# CONTROL_DIR/stop ends it. Times are CLOCK_REALTIME seconds (the test's `date +%s.%N`).
import hashlib
import json
import os
import random
import struct
import sys
import time

BLK = 4096
MAGIC = b"PCLW"
HDR = struct.Struct("<4s8sIQd")  # magic, box, block, gen, time written


def block_bytes(box, block, gen):
    hdr = HDR.pack(MAGIC, box.encode()[:8].ljust(8, b"\0"), block, gen, time.time())
    seed = hashlib.sha256(HDR.pack(MAGIC, box.encode()[:8].ljust(8, b"\0"), block, gen, 0.0)).digest()
    body = (seed * (BLK // len(seed) + 1))[: BLK - HDR.size]
    return hdr + body


def parse(buf, block):
    if buf[:4] != MAGIC:
        return None if buf.count(0) == len(buf) else "garbage"
    _, box, blk, gen, _ = HDR.unpack(buf[: HDR.size])
    box = box.rstrip(b"\0").decode()
    if blk != block:
        return "garbage"
    seed = hashlib.sha256(HDR.pack(MAGIC, box.encode().ljust(8, b"\0"), blk, gen, 0.0)).digest()
    if buf[HDR.size:] != (seed * (BLK // len(seed) + 1))[: BLK - HDR.size]:
        return "garbage"
    return (box, gen)


def pod_epoch(status):
    # The pod's epoch as the box reports it right after an acknowledgement: a box that
    # acknowledged a write while a newer epoch already served the pod elsewhere shows an older
    # one (an acknowledgement after its resync shows the new one).
    try:
        with open(status) as f:
            return max(p["epoch"] for p in json.load(f)["pods"])
    except (OSError, ValueError, KeyError):
        return -1


def run(path, box, first, count, journal, ctl):
    status = os.path.join(os.path.dirname(os.path.dirname(path)), ".pstorage", "cluster",
                          "status.json")
    rnd = random.Random(f"{box}-{os.getpid()}")
    gens = {}
    gen = int(time.time() * 1000) << 16  # grows across restarts of the writer
    fd = -1
    j = open(journal, "a", buffering=1)
    errors = 0
    while not os.path.exists(os.path.join(ctl, "stop")):
        if os.path.exists(os.path.join(ctl, "pause")):
            open(os.path.join(ctl, f"paused.{box}"), "w").close()
            time.sleep(0.02)
            continue
        if fd < 0:
            try:
                fd = os.open(path, os.O_WRONLY)
            except OSError:
                time.sleep(0.1)
                continue
        block = first + rnd.randrange(count)
        gen += 1
        t0 = time.time()
        try:
            os.pwrite(fd, block_bytes(box, block, gen), block * BLK)
            os.fdatasync(fd)
        except OSError as e:
            errors += 1
            j.write(f"E {box} {block} {gen} {t0:.6f} {time.time():.6f} {e.errno}\n")
            try:
                os.close(fd)
            except OSError:
                pass
            fd = -1
            time.sleep(0.05)
            continue
        t1 = time.time()
        j.write(f"A {box} {block} {gen} {t0:.6f} {t1:.6f} {pod_epoch(status)}\n")
    j.write(f"# {box} stopped, {errors} errors\n")
    return 0


def acks(journals):
    out = []
    for jp in journals:
        for line in open(jp):
            f = line.split()
            if f and f[0] == "A":
                out.append((f[1], int(f[2]), int(f[3]), float(f[4]), float(f[5]),
                            int(f[6]) if len(f) > 6 else -1))
    return out


def verify(path, journals):
    last = {}
    for box, block, gen, _, _, _ in acks(journals):
        if gen > last.get(block, (None, 0))[1]:
            last[block] = (box, gen)
    bad = 0
    with open(path, "rb") as f:
        for block, (box, gen) in sorted(last.items()):
            f.seek(block * BLK)
            got = parse(f.read(BLK), block)
            if got is None or got == "garbage" or got[0] != box or got[1] < gen:
                bad += 1
                if bad <= 5:
                    print(f"block {block}: acknowledged {box} gen {gen}, read {got}")
    print(f"{path}: {len(last)} blocks with acknowledged writes, {bad} lost or wrong")
    return 1 if bad else 0


def split(windows, journals):
    # Per window (from just after a fault to its heal): acknowledgements by both boxes inside
    # it, or, up to AFTER seconds past it, one by a box in an epoch older than the one the other
    # box served alone in during the window (a stale box that kept serving).
    a = acks(journals)
    bad = 0
    for line in open(windows):
        f = line.split()
        if len(f) < 4:
            continue
        lo, hi, after, label = float(f[0]), float(f[1]), float(f[2]), " ".join(f[3:])
        boxes, newest = {}, {}
        for box, _, _, _, t, ep in a:
            if lo < t < hi:
                boxes.setdefault(box, []).append(t)
                newest[box] = max(newest.get(box, -1), ep)
        why = []
        if len(boxes) > 1:
            why.append(", ".join(
                f"{b} acknowledged {len(ts)} writes ({min(ts) - lo:.3f}..{max(ts) - lo:.3f} s "
                f"into it)" for b, ts in sorted(boxes.items())))
        for box, _, _, _, t, ep in a:
            for other, e in newest.items():
                if other != box and lo < t < hi + after and 0 <= ep < e:
                    why.append(f"{box} acknowledged a write {t - lo:.3f} s into it in epoch "
                               f"{ep}, older than {other}'s {e}")
                    break
            if len(why) > 3:
                break
        if why:
            bad += 1
            print(f"split brain in {label} (window {lo:.3f}..{hi:.3f}): " + "; ".join(why))
    return 1 if bad else 0


def failover(journal, t0):
    # A write started before the fault may have been acknowledged just after it; one started
    # after it could only be acknowledged once a box served the pod again.
    ts = [t for _, _, _, start, t, _ in acks([journal]) if start > t0]
    print(f"{min(ts) - t0:.3f}" if ts else "none")
    return 0


def main(argv):
    if len(argv) >= 8 and argv[1] == "run":
        return run(argv[2], argv[3], int(argv[4]), int(argv[5]), argv[6], argv[7])
    if len(argv) >= 4 and argv[1] == "verify":
        return verify(argv[2], argv[3:])
    if len(argv) >= 4 and argv[1] == "split":
        return split(argv[2], argv[3:])
    if len(argv) >= 4 and argv[1] == "failover":
        return failover(argv[2], float(argv[3]))
    print(__doc__ if __doc__ else "usage: see the header", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
