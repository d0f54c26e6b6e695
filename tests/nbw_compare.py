#!/usr/bin/env python3
"""nbw_compare.py A.nbw B.nbw [REL_TOL] -- compares two version-1 weight files
(model/WEIGHTS.md) tensor by tensor. Prints one line per tensor (max |a-b|, max |a-b| /
(|a|+|b|+1e-3) and the tensor's max |a|) and one for the calibration (calib_a, calib_b: fitted
to each model's own logits, so as close as the weights, not bit-equal), then "worst_rel X
max_abs Y identical Z". Exits 1 when the configuration (header bytes 20-68), product ids or
tensor shapes differ, or a relative difference exceeds REL_TOL (if given)."""
import struct, sys
import numpy as np

def read(path):
    b = open(path, "rb").read()
    assert b[:8] == b"NBWEIGHT", path
    hdr = b[20:80]
    P = struct.unpack_from("<i", b, 20)[0]
    off = 80 + 4 * P
    ids = b[80:off]
    (nt,) = struct.unpack_from("<I", b, off); off += 4
    tensors = []
    for _ in range(nt):
        (n,) = struct.unpack_from("<I", b, off); off += 4
        name = b[off:off + n].decode(); off += n
        rows, cols = struct.unpack_from("<II", b, off); off += 8
        v = np.frombuffer(b, dtype="<f4", count=rows * cols, offset=off).astype(np.float64)
        off += 4 * rows * cols
        tensors.append((name, (rows, cols), v))
    return hdr, ids, tensors

def main():
    a, b = read(sys.argv[1]), read(sys.argv[2])
    tol = float(sys.argv[3]) if len(sys.argv) > 3 else None
    if a[0][:48] != b[0][:48] or a[1] != b[1]:
        print("configuration or product ids differ"); return 1
    ca, cb = (np.array(struct.unpack_from("<2f", h[0], 48), dtype=np.float64) for h in (a, b))
    d = np.abs(ca - cb)
    worst, mabs = float((d / (np.abs(ca) + np.abs(cb) + 1e-3)).max()), float(d.max())
    same = bool((ca == cb).all())
    print("%-16s max_abs %.3e max_rel %.3e" % ("calibration", mabs, worst))
    for (na, sa, va), (nb, sb, vb) in zip(a[2], b[2]):
        if na != nb or sa != sb:
            print("tensor %s %s vs %s %s" % (na, sa, nb, sb)); return 1
        d = np.abs(va - vb)
        rel = d / (np.abs(va) + np.abs(vb) + 1e-3)
        r, m = float(rel.max(initial=0)), float(d.max(initial=0))
        print("%-16s max_abs %.3e max_rel %.3e (max |a| %.3e)" % (na, m, r, float(np.abs(va).max(initial=0))))
        worst, mabs = max(worst, r), max(mabs, m)
        same = same and bool((va == vb).all())
    print("worst_rel %.3e max_abs %.3e identical %d" % (worst, mabs, same))
    return 1 if tol is not None and worst > tol else 0

sys.exit(main())
