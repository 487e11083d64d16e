#!/usr/bin/python3
"""Read a herd checkpoint with h5py and numpy alone (docs/checkpoint-format.md):
the global view model.h5, every shard through its own slice index (/index), the
MANIFEST's and every shard's XXH64 (recomputed here from the public xxHash
spec, independently of the C code), and the /meta blob.

    ckpt_h5py.py STEP_DIR STEP [--expect-world N]

The checkpoint is one written by build/tests/ckpt_make: value(kind k, tensor t,
i, j) = (k ? -1 : 1) * (1000 t + 10 i + 0.5 j + 0.25 step)."""
import json
import os
import sys

import h5py
import numpy as np

M = (1 << 64) - 1
P1, P2, P3, P4, P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                      0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)


def rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M


def xxh64(data, seed=0):
    """XXH64 from the spec; 4-lane stripes vectorised with numpy (uint64 wraps)."""
    n = len(data)
    p = 0
    if n >= 32:
        nstripes = n // 32
        lanes = np.frombuffer(data[:nstripes * 32], dtype='<u8').reshape(nstripes, 4)
        v = np.array([(seed + P1 + P2) & M, (seed + P2) & M, seed, (seed - P1) & M], dtype=np.uint64)
        with np.errstate(over='ignore'):
            for row in lanes:  # sequential by nature; the files here are small
                v = v + row * np.uint64(P2)
                v = (v << np.uint64(31)) | (v >> np.uint64(33))
                v = v * np.uint64(P1)
        v = [int(x) for x in v]
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & M
        for x in v:
            k = (rotl((x * P2) & M, 31) * P1) & M
            h = ((h ^ k) * P1 + P4) & M
        p = nstripes * 32
    else:
        h = (seed + P5) & M
    h = (h + n) & M
    while p + 8 <= n:
        k = int.from_bytes(data[p:p + 8], 'little')
        k = (rotl((k * P2) & M, 31) * P1) & M
        h = (rotl(h ^ k, 27) * P1 + P4) & M
        p += 8
    if p + 4 <= n:
        h = (rotl(h ^ ((int.from_bytes(data[p:p + 4], 'little') * P1) & M), 23) * P2 + P3) & M
        p += 4
    while p < n:
        h = (rotl(h ^ ((data[p] * P5) & M), 11) * P1) & M
        p += 1
    h ^= h >> 33
    h = (h * P2) & M
    h ^= h >> 29
    h = (h * P3) & M
    h ^= h >> 32
    return h


TENSORS = ["model.embed_tokens.weight", "model.layers.0.input_layernorm.weight",
           "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight",
           "model.layers.0.self_attn.v_proj.weight", "model.layers.0.self_attn.o_proj.weight",
           "model.layers.0.post_attention_layernorm.weight", "model.layers.0.mlp.gate_proj.weight",
           "model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.down_proj.weight",
           "model.norm.weight", "lm_head.weight"]


def expected(kind, name, shape, step):
    t = TENSORS.index(name)
    i = np.arange(shape[0], dtype=np.float64)[:, None]
    j = np.arange(shape[1] if len(shape) > 1 else 1, dtype=np.float64)[None, :]
    v = (1000.0 * t + 10.0 * i + 0.5 * j + 0.25 * step) * (-1.0 if kind == "adam_m" else 1.0)
    return v.astype(np.float32).reshape(shape)


fails = 0


def check(name, ok, why=""):
    global fails
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + why))
    fails += 0 if ok else 1


def main():
    step_dir, step = sys.argv[1], int(sys.argv[2])
    expect_world = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--expect-world" else None

    # MANIFEST: lines, sealed by 'end XXH64' of everything before the last line
    raw = open(os.path.join(step_dir, "MANIFEST"), "rb").read()
    body, last = raw.rstrip(b"\n").rsplit(b"\n", 1)
    body += b"\n"
    check("h5py_manifest_checksum", last.startswith(b"end ") and int(last[4:], 16) == xxh64(body))
    lines = body.decode().splitlines()
    check("h5py_manifest_header", lines[0] == "herd-checkpoint 2" and lines[1] == "step %d" % step)
    world = int(lines[2].split()[1])
    if expect_world is not None:
        check("h5py_manifest_world", world == expect_world, "world %d" % world)
    shards = [l.split() for l in lines if l.startswith("shard ")]
    check("h5py_manifest_no_slices", not any(l.startswith("slice ") for l in lines))

    ok = len(shards) == world
    for _, r, fname, size, h in shards:
        data = open(os.path.join(step_dir, fname), "rb").read()
        ok &= len(data) == int(size) and xxh64(data) == int(h, 16)
    check("h5py_shard_xxh64", ok)

    # each shard's slice index: /index, text lines KIND NDIM G0 G1 O0 O1 S0 S1 NAME
    slices = []
    ok = True
    for _, r, fname, _, _ in shards:
        with h5py.File(os.path.join(step_dir, fname), "r") as f:
            ok &= f.attrs["format"].decode() == "herd-checkpoint 2" if isinstance(f.attrs["format"], bytes) \
                else str(f.attrs["format"]) == "herd-checkpoint 2"
            text = bytes(f["index"][...]).decode()
        slices += [["slice", r] + l.split() for l in text.splitlines()]
        ok &= all(len(l.split()) == 9 for l in text.splitlines())
    check("h5py_shard_index", ok)

    # every slice from its shard: attributes and values
    ok = True
    for _, r, kind, ndim, g0, g1, o0, o1, s0, s1, name in slices:
        ndim = int(ndim)
        with h5py.File(os.path.join(step_dir, "shard_%05d.h5" % int(r)), "r") as f:
            d = f["%s/%s/%s_%s" % (kind, name, o0, o1)]
            gshape = [int(g0), int(g1)][:ndim]
            off = [int(o0), int(o1)][:ndim]
            ok &= list(d.attrs["global_shape"]) == gshape and list(d.attrs["offset"]) == off
            full = expected(kind, name, gshape, step)
            want = full[int(o0):int(o0) + int(s0)] if ndim == 1 else \
                full[int(o0):int(o0) + int(s0), int(o1):int(o1) + int(s1)]
            ok &= d.shape == want.shape and np.array_equal(d[...], want)
    check("h5py_shard_slices", ok and len(slices) > 0)

    # the global view: whole tensors by name
    ok = True
    with h5py.File(os.path.join(step_dir, "model.h5"), "r") as f:
        n = 0
        for kind in ("param", "adam_m"):
            for name in TENSORS:
                d = f[kind][name]
                ok &= np.array_equal(d[...], expected(kind, name, d.shape, step))
                n += 1
        ok &= int(f.attrs["step"][0]) == step
    check("h5py_global_view", ok and n == 2 * len(TENSORS))

    with h5py.File(os.path.join(step_dir, "shard_00000.h5"), "r") as f:
        meta = json.loads(bytes(f["meta"][...]).decode())
        check("h5py_meta", meta["step"] == step and meta["rank"] == 0 and int(f.attrs["rank"][0]) == 0)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
