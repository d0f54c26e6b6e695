#!/usr/bin/python3
"""gen_torch_fixture.py -- PyTorch reference fixtures for tests/test_parity.c.

Usage: /usr/bin/python3 tests/gen_torch_fixture.py OUTDIR      (make torch-fixtures)

Builds the CNN -> GRU -> head model of model/nn.h from stock PyTorch modules (nn.Embedding,
nn.Conv1d, nn.GRU over pack_padded_sequence, nn.Linear, BCEWithLogitsLoss(pos_weight),
torch.optim.Adam) with small dimensions, runs one forward/backward and 5 Adam steps on a
fixed batch of variable-length users, and writes everything our C model must reproduce.

Precision: the weights are initialised by PyTorch in float32 (so they are exactly
representable in our float build), then the whole computation runs in float64; every result
is stored rounded to float32 (losses as float64). The reference is therefore the exact
mathematics up to one final rounding, and the C test's tolerance only has to cover the float32
arithmetic of our implementation.

Semantics (nn.h): each order's product embeddings [L, E] are zero-padded at the end to the
kernel length when L < K, Conv1d (no padding) -> ReLU -> max over the L-K+1 valid positions
(computed per order, so no padded position ever exists); the order vectors of a user, oldest
first, go through a multi-layer GRU via pack_padded_sequence (users have 1..5 orders); the
top layer's final hidden state -> Linear(H, D) -> ReLU -> Linear(D, P) (or only the rows of a
candidate list, S < P); the optional repeat term adds rep2(ReLU(rep1(f))) to listed (sample,
column) logits; loss = BCEWithLogits(pos_weight), mean over B x (S or P). Dropout is 0.

File format (little-endian), read by tests/test_parity.c:
  magic "NBFIXT01" | u32 n_records | records | u32 CRC-32 (zlib) of all preceding bytes
  record: u32 name_len | name bytes | u32 dtype (1 = f32, 2 = i32, 3 = f64) | u32 ndim |
          u32 dims[ndim] | data (prod(dims) elements, row-major)
Records: "cfg" i32[11] = n_products emb cnn_out kernel gru_hidden gru_layers head max_orders
max_products rep_features rep_hidden; "hyper" f64[6] = dropout pos_weight lr beta1 beta2 eps;
"batch.n_ord", "batch.ord_off", "batch.items" (i32), "batch.rows" (i32, only when S > 0),
"batch.targets" f32[B, S or P], "batch.rep_b", "batch.rep_col" (i32), "batch.rep_feat"
f32[n_rep, F] (only with the repeat term); "w0.<t>" initial weights, "grad<k>.<t>" the
gradients at Adam step k = 0..4 (before the update), "w5.<t>" the weights after the 5 Adam
steps, for every tensor <t> named after
nn_params' fields (emb conv_w conv_b gru_w_ih.<l> gru_w_hh.<l> gru_b_ih.<l> gru_b_hh.<l> fc_w
fc_b out_w out_b [rep_w1 rep_b1 rep_w2 rep_b2]) in nn_params order, with PyTorch's shapes;
"logits" f32[B, S or P]; "loss" f64[1]; "losses" f64[5] (the loss before each Adam step).
"""
import os
import struct
import sys
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as Fn
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence

F32, I32, F64 = 1, 2, 3


class Net(nn.Module):
    def __init__(self, P, E, C, K, H, L, D, F, R):
        super().__init__()
        self.K = K
        self.emb = nn.Embedding(P, E)
        self.conv = nn.Conv1d(E, C, K)
        self.gru = nn.GRU(C, H, L, batch_first=True, dropout=0.0)
        self.fc = nn.Linear(H, D)
        self.out = nn.Linear(D, P)
        self.F = F
        if F > 0:
            self.rep1 = nn.Linear(F, R)
            self.rep2 = nn.Linear(R, 1)

    def named_tensors(self):
        """(name, parameter) in nn_params order."""
        t = [("emb", self.emb.weight), ("conv_w", self.conv.weight), ("conv_b", self.conv.bias)]
        for l in range(self.gru.num_layers):
            t += [(f"gru_w_ih.{l}", getattr(self.gru, f"weight_ih_l{l}")),
                  (f"gru_w_hh.{l}", getattr(self.gru, f"weight_hh_l{l}")),
                  (f"gru_b_ih.{l}", getattr(self.gru, f"bias_ih_l{l}")),
                  (f"gru_b_hh.{l}", getattr(self.gru, f"bias_hh_l{l}"))]
        t += [("fc_w", self.fc.weight), ("fc_b", self.fc.bias),
              ("out_w", self.out.weight), ("out_b", self.out.bias)]
        if self.F > 0:
            t += [("rep_w1", self.rep1.weight), ("rep_b1", self.rep1.bias),
                  ("rep_w2", self.rep2.weight), ("rep_b2", self.rep2.bias)]
        return t

    def forward(self, users, rows, rep):
        """users: list (per sample) of lists (orders, oldest first) of product-index lists."""
        seqs = []
        for orders in users:
            vecs = []
            for items in orders:
                x = self.emb(torch.tensor(items)).t().unsqueeze(0)      # [1, E, L]
                if x.shape[2] < self.K:                                # zero-pad at the end
                    x = Fn.pad(x, (0, self.K - x.shape[2]))
                y = torch.relu(self.conv(x))                            # [1, C, L-K+1]
                vecs.append(y.max(dim=2).values[0])                     # [C]
            seqs.append(torch.stack(vecs))                              # [n_ord, C]
        lengths = torch.tensor([len(s) for s in seqs])
        packed = pack_padded_sequence(pad_sequence(seqs, batch_first=True), lengths,
                                      batch_first=True, enforce_sorted=False)
        _, h_n = self.gru(packed)                                      # [L, B, H], caller order
        z = torch.relu(self.fc(h_n[-1]))
        if rows is None:
            logits = self.out(z)
        else:
            idx = torch.tensor(rows)
            logits = z @ self.out.weight[idx].t() + self.out.bias[idx]
        if rep is not None:
            rb, rc, feat = rep
            r = self.rep2(torch.relu(self.rep1(feat))).squeeze(1)
            logits = logits.index_put((torch.tensor(rb), torch.tensor(rc)), r, accumulate=True)
        return logits


class Writer:
    def __init__(self):
        self.recs = []

    def add(self, name, dtype, arr):
        np_t = {F32: "<f4", I32: "<i4", F64: "<f8"}[dtype]
        a = np.ascontiguousarray(np.asarray(arr), dtype=np_t)
        dims = a.shape if a.ndim > 0 else (1,)
        b = struct.pack("<I", len(name)) + name.encode() + struct.pack("<II", dtype, len(dims))
        b += struct.pack(f"<{len(dims)}I", *dims) + a.tobytes()
        self.recs.append(b)

    def bytes(self):
        b = b"NBFIXT01" + struct.pack("<I", len(self.recs)) + b"".join(self.recs)
        return b + struct.pack("<I", zlib.crc32(b) & 0xFFFFFFFF)


def make_batch(rng, P, B, S, F, n_rep):
    """Users with 1..5 orders (both extremes present) of 1..9 distinct products, some shorter
    than the kernel; targets ~20% positive; optional candidate rows and repeat entries."""
    n_ords = [1, 5, 3, 2, 4, 1][:B]
    users = []
    for n in n_ords:
        users.append([sorted(rng.choice(P, size=int(rng.integers(1, 10)), replace=False),
                             key=lambda _: rng.random()) for _ in range(n)])
    # make sure the edge cases exist: lengths 1, K-1 = 3, K = 4 and 9
    users[0][0] = list(rng.choice(P, size=1, replace=False))
    users[1][0] = list(rng.choice(P, size=3, replace=False))
    users[1][1] = list(rng.choice(P, size=4, replace=False))
    users[1][4] = list(rng.choice(P, size=9, replace=False))
    users = [[[int(i) for i in o] for o in u] for u in users]
    rows = None if S == 0 else [int(i) for i in rng.permutation(P)[:S]]
    W = S if S else P
    targets = (rng.random((B, W)) < 0.2).astype(np.float64)
    rep = None
    if F > 0:
        cells = rng.permutation(B * W)[:n_rep]
        rb = [int(c // W) for c in cells]
        rc = [int(c % W) for c in cells]
        rep = (rb, rc, torch.tensor(rng.normal(size=(n_rep, F)).astype(np.float32),
                                    dtype=torch.float64))
    return users, rows, targets, rep


def build(seed, S, F):
    P, E, C, K, H, L, D, R = 50, 8, 12, 4, 16, 2, 16, 5
    B, max_orders, max_products = 6, 5, 145
    dropout, pos_weight, lr, b1, b2, eps = 0.0, 10.0, 0.01, 0.9, 0.999, 1e-8
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = Net(P, E, C, K, H, L, D, F, R)                 # float32 init, PyTorch's defaults
    net.double()                                          # exact widening
    users, rows, targets, rep = make_batch(rng, P, B, S, F, n_rep=14)

    w = Writer()
    w.add("cfg", I32, [P, E, C, K, H, L, D, max_orders, max_products, F, R if F else 0])
    w.add("hyper", F64, [dropout, pos_weight, lr, b1, b2, eps])
    w.add("batch.n_ord", I32, [len(u) for u in users])
    off = [0]
    items = []
    for u in users:
        for o in u:
            items += o
            off.append(len(items))
    w.add("batch.ord_off", I32, off)
    w.add("batch.items", I32, items)
    if rows is not None:
        w.add("batch.rows", I32, rows)
    w.add("batch.targets", F32, targets)
    if rep is not None:
        w.add("batch.rep_b", I32, rep[0])
        w.add("batch.rep_col", I32, rep[1])
        w.add("batch.rep_feat", F32, rep[2].numpy())
    for name, t in net.named_tensors():
        w.add("w0." + name, F32, t.detach().numpy())

    crit = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([pos_weight], dtype=torch.float64))
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(b1, b2), eps=eps)
    y = torch.tensor(targets)
    losses = []
    for step in range(5):
        opt.zero_grad()
        logits = net(users, rows, rep)
        loss = crit(logits, y)
        loss.backward()
        losses.append(loss.item())
        if step == 0:
            w.add("logits", F32, logits.detach().numpy())
            w.add("loss", F64, [loss.item()])
        for name, t in net.named_tensors():
            w.add(f"grad{step}.{name}", F32, t.grad.numpy())
        opt.step()
    w.add("losses", F64, losses)
    for name, t in net.named_tensors():
        w.add("w5." + name, F32, t.detach().numpy())
    return w.bytes()


# ---- layer fixtures: the attention encoder's self-attention, its pooling, the transformer
# block (tests/test_parity_layers.c). Sequences of lengths 1, 3 and 5 are packed for our
# side and padded (key_padding_mask) for torch's; the loss is sum(out * G) over the valid
# positions with a fixed random G, so every output element has its own upstream gradient.
# Records: "off" i32 (packed offsets), "x" f32 [T, A], "G", the weights under our names,
# then "out", "dx" and "d<name>" for every weight (float64 results rounded to float32).
LENS = [1, 3, 5]


def packed_offsets():
    off = [0]
    for n in LENS:
        off.append(off[-1] + n)
    return off


def padded(xp, A):
    """packed [T, A] float64 -> padded [n_seq, Lmax, A] and the key padding mask."""
    L = max(LENS)
    xs = torch.zeros(len(LENS), L, A, dtype=torch.float64)
    mask = torch.ones(len(LENS), L, dtype=torch.bool)
    k = 0
    for s, n in enumerate(LENS):
        xs[s, :n] = xp[k:k + n]
        mask[s, :n] = False
        k += n
    return xs, mask


def unpad(y):
    return torch.cat([y[s, :n] for s, n in enumerate(LENS)])


def f32(t):
    """A float32 draw widened to float64 (exactly representable in our float build)."""
    return t.float().double()


def layer_record(w, named, out, x):
    """Appends a layer fixture's weights (named: [(our name, tensor)]), its output and the
    gradients of x and of every weight ("d" + name) to w; returns the file's bytes."""
    for n, t in named:
        w.add(n, F32, t.detach().numpy())
    w.add("out", F32, out.detach().numpy())
    w.add("dx", F32, x.grad.numpy())
    for n, t in named:
        w.add("d" + n, F32, t.grad.numpy())
    return w.bytes()


def attn_inputs(A, causal):
    """A random packed input x [T, A] over LENS (requires grad) and output gradient G, then x
    padded for torch with its key padding mask, and the causal mask (None when not causal).
    x before G: the order the committed fixtures were drawn in."""
    T = sum(LENS)
    x = f32(torch.randn(T, A)).requires_grad_(True)
    G = f32(torch.randn(T, A))
    xs, kpm = padded(x, A)
    Lm = max(LENS)
    am = torch.triu(torch.ones(Lm, Lm, dtype=torch.bool), 1) if causal else None
    return x, G, xs, kpm, am


def inputs_writer(x, G):
    """A Writer holding the packed offsets, x and G (the start of every attention record)."""
    w = Writer()
    w.add("off", I32, packed_offsets())
    w.add("x", F32, x.detach().numpy())
    w.add("G", F32, G.numpy())
    return w


def layer_mha(seed, causal):
    torch.manual_seed(seed)
    A, nh = 8, 2
    mha = nn.MultiheadAttention(A, nh, dropout=0.0, batch_first=True)
    with torch.no_grad():  # non-zero biases, so their gradients are checked too
        mha.in_proj_bias.uniform_(-0.3, 0.3)
        mha.out_proj.bias.uniform_(-0.3, 0.3)
    mha.double()
    x, G, xs, kpm, am = attn_inputs(A, causal)
    y, _ = mha(xs, xs, xs, key_padding_mask=kpm, attn_mask=am, need_weights=False)
    out = unpad(y)
    (out * G).sum().backward()
    w = inputs_writer(x, G)
    named = [("w_in", mha.in_proj_weight), ("b_in", mha.in_proj_bias),
             ("w_out", mha.out_proj.weight), ("b_out", mha.out_proj.bias)]
    return layer_record(w, named, out, x)


def layer_pool(seed):
    """Attention pooling with a learned query, written out in torch."""
    torch.manual_seed(seed)
    A = 8
    T = sum(LENS)
    x = f32(torch.randn(T, A)).requires_grad_(True)
    q = f32(torch.randn(A)).requires_grad_(True)
    G = f32(torch.randn(len(LENS), A))
    xs, kpm = padded(x, A)
    score = (xs @ q / A ** 0.5).masked_fill(kpm, float("-inf"))
    alpha = torch.softmax(score, dim=1)
    out = (alpha.unsqueeze(2) * xs).sum(dim=1)
    (out * G).sum().backward()
    w = Writer()
    w.add("off", I32, packed_offsets())
    w.add("x", F32, x.detach().numpy())
    w.add("G", F32, G.numpy())
    w.add("q", F32, q.detach().numpy())
    w.add("out", F32, out.detach().numpy())
    w.add("dx", F32, x.grad.numpy())
    w.add("dq", F32, q.grad.numpy())
    return w.bytes()


def layer_tblock(seed, causal):
    torch.manual_seed(seed)
    A, nh = 8, 2
    blk = nn.TransformerEncoderLayer(A, nh, dim_feedforward=4 * A, dropout=0.0,
                                     activation="relu", batch_first=True, norm_first=True)
    with torch.no_grad():  # LayerNorm and attention parameters away from their trivial init
        for ln in (blk.norm1, blk.norm2):
            ln.weight.uniform_(0.5, 1.5)
            ln.bias.uniform_(-0.3, 0.3)
        blk.self_attn.in_proj_bias.uniform_(-0.3, 0.3)
        blk.self_attn.out_proj.bias.uniform_(-0.3, 0.3)
    blk.double()
    blk.train()  # no fast path: the plain composition of its modules
    x, G, xs, kpm, am = attn_inputs(A, causal)
    out = unpad(blk(xs, src_mask=am, src_key_padding_mask=kpm))
    (out * G).sum().backward()
    w = inputs_writer(x, G)
    named = [("ln1_w", blk.norm1.weight), ("ln1_b", blk.norm1.bias),
             ("w_in", blk.self_attn.in_proj_weight), ("b_in", blk.self_attn.in_proj_bias),
             ("w_out", blk.self_attn.out_proj.weight), ("b_out", blk.self_attn.out_proj.bias),
             ("ln2_w", blk.norm2.weight), ("ln2_b", blk.norm2.bias),
             ("ff1_w", blk.linear1.weight), ("ff1_b", blk.linear1.bias),
             ("ff2_w", blk.linear2.weight), ("ff2_b", blk.linear2.bias)]
    return layer_record(w, named, out, x)


def build_rank(seed):
    """The ranking losses of model/nn_rank.c composed as train/rankloss.c does, on a fixed
    logit matrix: text, one record per line, "name count v1 v2 ..." (values printed with
    repr: exact). Records: dims (B P), hyper (pos_weight rank_weight margin), logits [B*P]
    (float32 values), targets [B*P], pos and neg [n pairs] (flat indices b*P+p; for each
    positive, 3 negatives drawn uniformly among the row's non-positives), then for each
    loss in bce+bpr, bce+margin, bpr: loss.<name> [1] and grad.<name> [B*P], d loss/d logits.
    BPR is -logsigmoid(s+ - s-), margin is F.margin_ranking_loss(s+, s-, 1, margin), both
    means over the pairs; bce+X = BCEWithLogits(pos_weight) + rank_weight * X; bpr alone
    has no BCE. All in float64."""
    B, P, n_neg = 4, 30, 3
    pos_weight, rank_weight, margin = 10.0, 0.7, 1.0
    rng = np.random.default_rng(seed)
    logits = (rng.normal(size=(B, P)) * 3).astype(np.float32)
    logits[0, :4] = [40.0, -40.0, 25.0, -30.0]      # large |s+ - s-|: the stable forms
    targets = (rng.random((B, P)) < 0.2).astype(np.float64)
    targets[0, :2] = 1
    pos, neg = [], []
    for b in range(B):
        negs = [q for q in range(P) if targets[b, q] == 0]
        for p in range(P):
            if targets[b, p]:
                for q in rng.choice(negs, size=n_neg):
                    pos.append(b * P + p)
                    neg.append(b * P + int(q))
    lines = [("dims", [B, P]), ("hyper", [pos_weight, rank_weight, margin]),
             ("logits", logits.reshape(-1).tolist()), ("targets", targets.reshape(-1).tolist()),
             ("pos", pos), ("neg", neg)]
    y = torch.tensor(targets)
    crit = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([pos_weight], dtype=torch.float64))
    for name in ["bce+bpr", "bce+margin", "bpr"]:
        x = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
        sp, sn = x.reshape(-1)[pos], x.reshape(-1)[neg]
        if name.endswith("margin"):
            r = Fn.margin_ranking_loss(sp, sn, torch.ones_like(sp), margin=margin)
        else:
            r = -Fn.logsigmoid(sp - sn).mean()
        loss = r if name == "bpr" else crit(x, y) + rank_weight * r
        loss.backward()
        lines.append(("loss." + name, [loss.item()]))
        lines.append(("grad." + name, x.grad.reshape(-1).tolist()))
    text = "".join(f"{n} {len(v)} " + " ".join(repr(float(e)) if isinstance(e, float)
                                              else str(e) for e in v) + "\n"
                   for n, v in lines)
    return text.encode()


def write(out, name, data):
    """Writes data to OUT/name (".bin" added unless name has a suffix) atomically."""
    path = os.path.join(out, name if "." in name else name + ".bin")
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    print(f"{path}: {len(data)} bytes")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_torch_fixture.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    # name, seed, candidate head size S (0 = full head), repeat features F (0 = off)
    for name, seed, S, F in [("parity_full", 1, 0, 0), ("parity_cand", 2, 20, 0),
                             ("parity_rep", 3, 0, 6), ("parity_rep_cand", 4, 15, 6)]:
        write(out, name, build(seed, S, F))
    write(out, "parity_mha", layer_mha(11, False))
    write(out, "parity_mha_causal", layer_mha(12, True))
    write(out, "parity_pool", layer_pool(13))
    write(out, "parity_tblock", layer_tblock(14, False))
    write(out, "parity_tblock_causal", layer_tblock(15, True))
    write(out, "parity_rank.txt", build_rank(5))


if __name__ == "__main__":
    main()
