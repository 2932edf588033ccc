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
#   cluster_writer.py wait   SECONDS STATE STATUS.JSON...   (pod p1 in STATE on every box)
#   cluster_writer.py agreed SECONDS STATUS.JSON...  (every box races with one nonzero revision)
#
# With CW_STATE=PATH in the environment, verify, split and failover keep what they learnt in
# PATH and read only the journal lines added since: a run of hundreds of rounds would
# otherwise re-read every journal (and test every window against every ack) after each round.
#
# CONTROL_DIR/pause: while it exists the writer issues nothing and touches CONTROL_DIR/paused.BOX;
# CONTROL_DIR/stop ends it. Times are CLOCK_REALTIME seconds (the test's `date +%s.%N`).
import hashlib
import json
import os
import pickle
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


def ack_of(line):
    f = line.split()
    if not f or f[0] != "A":
        return None
    return (f[1], int(f[2]), int(f[3]), float(f[4]), float(f[5]), int(f[6]) if len(f) > 6 else -1)


def acks(journals):
    return [a for jp in journals for a in map(ack_of, open(jp)) if a]


class State:
    """What the checks learnt from the journals so far (CW_STATE): per journal the bytes read,
    the newest acknowledged generation of every block, the acks that may still fall inside a
    window not yet closed, and the windows checked for good."""

    def __init__(self, path):
        self.path = path
        self.offsets, self.last, self.recent, self.closed = {}, {}, [], 0
        if path and os.path.exists(path):
            with open(path, "rb") as f:
                self.offsets, self.last, self.recent, self.closed = pickle.load(f)

    def absorb(self, journals):
        """Reads the lines added to JOURNALS since the last call; returns their acks."""
        new = []
        for jp in journals:
            with open(jp, "rb") as f:
                f.seek(self.offsets.get(jp, 0))
                data = f.read()
            end = data.rfind(b"\n") + 1  # a line being written is read next time
            self.offsets[jp] = self.offsets.get(jp, 0) + end
            new += [a for a in map(ack_of, data[:end].decode().splitlines()) if a]
        for box, block, gen, _, _, _ in new:
            if gen > self.last.get(block, (None, 0))[1]:
                self.last[block] = (box, gen)
        self.recent += new
        return new

    def save(self):
        if self.path:
            tmp = self.path + ".tmp"
            with open(tmp, "wb") as f:
                pickle.dump((self.offsets, self.last, self.recent, self.closed), f)
            os.replace(tmp, self.path)


def verify(path, journals):
    st = State(os.environ.get("CW_STATE"))
    st.absorb(journals)
    st.save()
    last = st.last
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
    st = State(os.environ.get("CW_STATE"))
    st.absorb(journals)
    a = st.recent
    wins = [w for w in (line.split() for line in open(windows)) if len(w) >= 4]
    # A window is closed once the journals have gone past its end (plus AFTER and a margin for
    # a writer between its ack and its journal line): no later line can fall inside it.
    latest = max((t for _, _, _, _, t, _ in a), default=0.0)
    bad = 0
    for i, f in enumerate(wins):
        if i < st.closed:
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
        if i == st.closed and latest > hi + after + 1.0:
            st.closed += 1
    if st.path:
        keep = min((float(f[0]) for f in wins[st.closed:]), default=latest)
        st.recent = [x for x in a if x[4] >= keep]
        st.save()
    return 1 if bad else 0


def failover(journal, t0):
    # A write started before the fault may have been acknowledged just after it; one started
    # after it could only be acknowledged once a box served the pod again.
    if os.environ.get("CW_STATE"):
        # Only lines not absorbed yet (the checks ran before the fault); a private copy of the
        # state, so the next check still reads them.
        new = State(os.environ["CW_STATE"]).absorb([journal])
    else:
        new = acks([journal])
    ts = [t for _, _, _, start, t, _ in new if start > t0]
    print(f"{min(ts) - t0:.3f}" if ts else "none")
    return 0


def pods(statuses):
    out = []
    for s in statuses:
        try:
            with open(s) as f:
                out.append(next((p for p in json.load(f)["pods"] if p["name"] == "p1"), None))
        except (OSError, ValueError, KeyError):
            out.append(None)
    return out


def wait(seconds, pred, statuses):
    # One process polls every box (the shell's loops spawned an interpreter per look).
    end = time.monotonic() + seconds
    while True:
        ps = pods(statuses)
        if pred(ps):
            return 0
        if time.monotonic() > end:
            print(" ".join(str(p and p.get("state")) + "/" +
                           str(p and p.get("failover", {}).get("mediator_revision"))
                           for p in ps))
            return 1
        time.sleep(0.03)


def main(argv):
    if len(argv) >= 8 and argv[1] == "run":
        return run(argv[2], argv[3], int(argv[4]), int(argv[5]), argv[6], argv[7])
    if len(argv) >= 4 and argv[1] == "verify":
        return verify(argv[2], argv[3:])
    if len(argv) >= 4 and argv[1] == "split":
        return split(argv[2], argv[3:])
    if len(argv) >= 4 and argv[1] == "failover":
        return failover(argv[2], float(argv[3]))
    if len(argv) >= 5 and argv[1] == "wait":
        want = argv[3]
        return wait(float(argv[2]), lambda ps: all(p and p["state"] == want for p in ps), argv[4:])
    if len(argv) >= 4 and argv[1] == "agreed":
        def same_rev(ps):
            revs = {p and p.get("failover", {}).get("mediator_revision") for p in ps}
            return len(revs) == 1 and revs.pop() not in (None, 0)
        return wait(float(argv[2]), same_rev, argv[3:])
    print(__doc__ if __doc__ else "usage: see the header", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
