#!/usr/bin/python3
"""torch_model.py -- the research log's PyTorch version of the model, timed on training steps.

Usage: /usr/bin/python3 bench/torch_model.py --batch 32 --products 49688 --cand 0 \
           --steps 10 --threads 2 [--warmup 2] [--seed 1] [--encoder cnn|attention] \
           [--sequence gru|transformer]
Prints one line: "torch steps/s <x> batch <B> products <P> cand <S> threads <T> steps <N>
cpu_ms/step <c> loss <l>", where cpu_ms/step is the process's CPU time (all threads, user +
system) per timed step: unlike steps/s it hardly depends on what else the machine runs.

The research version pads every order to 145 products and every user to 5 orders:
nn.Embedding(P + 1, E, padding_idx=P) over a [B, 5, 145] index tensor, nn.Conv1d(E, C, K)
over the whole padded tensor, ReLU, then a max over the valid positions only (positions
0 .. max(len - K, 0) of each order; padded orders contribute nothing), nn.GRU (2 layers,
dropout 0.1 between them) over pack_padded_sequence of each user's orders (oldest first),
Linear(H, D) -> ReLU -> Dropout(0.1) -> Linear(D, P) on the top layer's final state (or
only the rows of an S-product candidate list shared by the batch), BCEWithLogitsLoss with
pos_weight 10, torch.optim.Adam(lr 1e-3). Dimensions are nn_config_default's: E 32, C 128,
K 4, H 256, L 2, D 256.

--encoder attention replaces the Conv1d by the log's attention encoder over the same padded
tensor: Linear(E, C), nn.MultiheadAttention(C, 4 heads) with a key padding mask, residual,
then attention pooling with a learned query (masked softmax). --sequence transformer replaces
the GRU by L nn.TransformerEncoderLayer(H, 4, 4H, norm_first=True) blocks over the padded
[B, 5] orders (Linear(C, H) + learned positions counted back from the latest order, causal
and key padding masks), a final LayerNorm, the latest order's output. As in model/nn.h.

The batch is synthetic with realistic shapes (the same generator rules as
bench/nb-bench-model.c): each user has 1..5 orders (uniform), each order 1 + Poisson(9)
distinct products (mean ~10, capped at 145), about 10 positive targets per user.
"""
import argparse
import time

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence

MAX_ORDERS, MAX_PRODUCTS = 5, 145


class ResearchNet(nn.Module):
    def __init__(self, P, E=32, C=128, K=4, H=256, L=2, D=256, dropout=0.1, encoder="cnn",
                 sequence="gru"):
        super().__init__()
        self.P, self.K, self.encoder, self.sequence = P, K, encoder, sequence
        self.emb = nn.Embedding(P + 1, E, padding_idx=P)
        if encoder == "attention":
            self.enc = nn.Linear(E, C)
            self.mha = nn.MultiheadAttention(C, 4, batch_first=True)
            self.q = nn.Parameter(torch.randn(C) / C ** 0.5)
        else:
            self.conv = nn.Conv1d(E, C, K)
        if sequence == "transformer":
            self.tin = nn.Linear(C, H)
            self.pos = nn.Parameter(torch.randn(MAX_ORDERS, H) / H ** 0.5)
            layer = nn.TransformerEncoderLayer(H, 4, 4 * H, dropout=0.0, batch_first=True,
                                               norm_first=True)
            self.tf = nn.TransformerEncoder(layer, L, enable_nested_tensor=False)
            self.lnf = nn.LayerNorm(H)
        else:
            self.gru = nn.GRU(C, H, L, batch_first=True, dropout=dropout)
        self.fc = nn.Linear(H, D)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(D, P)

    def forward(self, items, order_len, n_ord, rows):
        B = items.shape[0]
        x = self.emb(items.view(B * MAX_ORDERS, MAX_PRODUCTS))        # [B*5, 145, E]
        if self.encoder == "attention":
            h = self.enc(x)                                             # [B*5, 145, C]
            pad = torch.arange(MAX_PRODUCTS).unsqueeze(0) >= order_len.view(-1, 1)
            pad[:, 0] = False              # a padded order (length 0) attends to one slot
            z = h + self.mha(h, h, h, key_padding_mask=pad, need_weights=False)[0]
            s = (z @ self.q / z.shape[2] ** 0.5).masked_fill(pad, float("-inf"))
            y = (torch.softmax(s, dim=1).unsqueeze(2) * z).sum(dim=1)   # [B*5, C]
        else:
            y = torch.relu(self.conv(x.transpose(1, 2)))               # [B*5, C, 142]
            n_pos = torch.clamp(order_len.view(-1) - self.K + 1, min=1)
            mask = torch.arange(y.shape[2]).unsqueeze(0) < n_pos.unsqueeze(1)
            y = y.masked_fill(~mask.unsqueeze(1), 0.0).max(dim=2).values  # ReLU >= 0
        seq = y.view(B, MAX_ORDERS, -1)
        if self.sequence == "transformer":
            t = torch.arange(MAX_ORDERS).unsqueeze(0)
            back = torch.clamp(n_ord.unsqueeze(1) - 1 - t, min=0)        # orders before latest
            u = self.tin(seq) + self.pos[back]
            causal = torch.triu(torch.ones(MAX_ORDERS, MAX_ORDERS, dtype=torch.bool), 1)
            u = self.tf(u, mask=causal, src_key_padding_mask=t >= n_ord.unsqueeze(1))
            top = self.lnf(u[torch.arange(B), n_ord - 1])
        else:
            packed = pack_padded_sequence(seq, n_ord, batch_first=True, enforce_sorted=False)
            _, h_n = self.gru(packed)
            top = h_n[-1]
        z = self.drop(torch.relu(self.fc(top)))
        if rows is None:
            return self.out(z)
        return z @ self.out.weight[rows].t() + self.out.bias[rows]


def make_batch(rng, B, P, S):
    items = np.full((B, MAX_ORDERS, MAX_PRODUCTS), P, dtype=np.int64)
    order_len = np.zeros((B, MAX_ORDERS), dtype=np.int64)
    n_ord = rng.integers(1, MAX_ORDERS + 1, size=B)
    for b in range(B):
        for o in range(n_ord[b]):
            n = min(1 + rng.poisson(9), MAX_PRODUCTS)
            items[b, o, :n] = rng.choice(P, size=n, replace=False)
            order_len[b, o] = n
    W = S if S else P
    targets = np.zeros((B, W), dtype=np.float32)
    for b in range(B):
        targets[b, rng.choice(W, size=min(10, W), replace=False)] = 1
    rows = None if S == 0 else torch.from_numpy(rng.choice(P, size=S, replace=False))
    return (torch.from_numpy(items), torch.from_numpy(order_len), torch.from_numpy(n_ord),
            rows, torch.from_numpy(targets))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--products", type=int, default=49688)
    ap.add_argument("--cand", type=int, default=0)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--encoder", choices=["cnn", "attention"], default="cnn")
    ap.add_argument("--sequence", choices=["gru", "transformer"], default="gru")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    net = ResearchNet(a.products, encoder=a.encoder, sequence=a.sequence)
    net.train()
    items, order_len, n_ord, rows, targets = make_batch(rng, a.batch, a.products, a.cand)
    crit = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([10.0]))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        loss = crit(net(items, order_len, n_ord, rows), targets)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    t0, c0 = time.perf_counter(), time.process_time()
    loss = 0.0
    for _ in range(a.steps):
        loss = step()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    if not np.isfinite(loss):
        raise SystemExit(f"torch_model: loss is {loss}")
    print(f"torch steps/s {a.steps / dt:.3f} batch {a.batch} products {a.products} "
          f"cand {a.cand} threads {torch.get_num_threads()} steps {a.steps} "
          f"cpu_ms/step {1000 * cpu / a.steps:.2f} loss {loss:.5f}")


if __name__ == "__main__":
    main()
