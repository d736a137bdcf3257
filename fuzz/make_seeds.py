#!/usr/bin/env python3
"""Writes the hand-made seed inputs under fuzz/seeds/<target>/ (committed; rerun only to change
them). Fixture files that are seeds as they are (datasets, configs, templates) are added by
fuzz/run.sh itself. Multi-file targets join their files with "#SPLIT#\\n" lines (targets.c)."""
import gzip, json, os, struct

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
fx = os.path.join(root, "tests", "fixtures")
SEP = b"#SPLIT#\n"


def put(target, name, data):
    d = os.path.join(root, "fuzz", "seeds", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# ---- tokenizers: the Qwen tokenizer cut to its first 400 ids (merges among them), added
# tokens renumbered after them; and a SentencePiece-style (Llama 2) byte-fallback BPE.
q = json.load(open(os.path.join(fx, "tokenizer", "qwen", "tokenizer.json")))
keep = {t: i for t, i in q["model"]["vocab"].items() if i < 400}
merges = [m for m in q["model"]["merges"] if m[0] + m[1] in keep and m[0] in keep and m[1] in keep]
added = [dict(a, id=400 + k) for k, a in enumerate(q["added_tokens"][:6])]
small = dict(q, added_tokens=added, model=dict(q["model"], vocab=keep, merges=merges))
put("tokenizer_json", "qwen_small.json", json.dumps(small, ensure_ascii=False))
sp_vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
for b in range(256):
    sp_vocab["<0x%02X>" % b] = 3 + b
for t in ["▁", "h", "e", "l", "o", "▁h", "el", "lo", "▁he", "llo", "▁hello", "w", "r", "d", "▁w"]:
    sp_vocab[t] = len(sp_vocab)
sp = {"version": "1.0", "added_tokens": [{"id": 0, "content": "<unk>", "special": True, "normalized": False,
                                          "lstrip": False, "rstrip": False, "single_word": False},
                                         {"id": 1, "content": "<s>", "special": True, "normalized": False,
                                          "lstrip": False, "rstrip": False, "single_word": False}],
      "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                                                          {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
      "pre_tokenizer": None, "post_processor": None,
      "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                                                    {"type": "ByteFallback"}, {"type": "Fuse"},
                                                    {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
      "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                "vocab": sp_vocab, "merges": [["▁", "h"], ["e", "l"], ["l", "o"], ["▁h", "e"], ["l", "lo"],
                                              ["▁he", "llo"], ["▁", "w"]]}}
put("tokenizer_json", "sentencepiece_small.json", json.dumps(sp, ensure_ascii=False))
tc = {"added_tokens_decoder": {str(a["id"]): {"content": a["content"], "special": True} for a in added},
      "tokenizer_class": "Qwen2Tokenizer", "eos_token": "<|im_end|>"}
mtxt = "#version: 0.2\n" + "".join("%s %s\n" % (a, b) for a, b in merges)
put("vocab_merges", "qwen_small", json.dumps(keep, ensure_ascii=False).encode() + b"\n" + SEP + mtxt.encode() + SEP +
    json.dumps(tc).encode())
put("vocab_merges", "gpt2_no_config", json.dumps(keep, ensure_ascii=False).encode() + b"\n" + SEP + mtxt.encode())


# ---- safetensors: a small file of several dtypes, and a two-shard index
def st_file(tensors):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, b"", 0
    for name, dt, shape, data in tensors:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
        blobs += data
        off += len(data)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blobs


a = st_file([("w", "F32", [2, 3], struct.pack("<6f", 1, 2, 3, 4, 5, 6)),
             ("b", "BF16", [4], struct.pack("<4H", 0x3f80, 0x4000, 0xbf80, 0)),
             ("h", "F16", [2, 1], struct.pack("<2H", 0x3c00, 0xc000))])
put("safetensors", "small.safetensors", a)
s1 = st_file([("model.layers.0.w", "F32", [2], struct.pack("<2f", 1, 2))])
s2 = st_file([("model.layers.1.w", "BF16", [2], struct.pack("<2H", 0x3f80, 0x4000))])
idx = {"metadata": {"total_size": 12}, "weight_map": {"model.layers.0.w": "model-00001-of-00002.safetensors",
                                                      "model.layers.1.w": "model-00002-of-00002.safetensors"}}
put("st_index", "two_shards", json.dumps(idx).encode() + b"\n" + SEP + s1 + SEP + s2)


# ---- token cache: Megatron MMIDIDX .idx/.bin for ids and the mask (3 sequences)
def mmidx(code, sizes, elt):
    n = len(sizes)
    b = b"MMIDIDX\0\0" + struct.pack("<Q", 1) + bytes([code]) + struct.pack("<QQ", n, n + 1)
    b += struct.pack("<%di" % n, *sizes)
    off, ptrs = 0, []
    for s in sizes:
        ptrs.append(off * elt)
        off += s
    return b + struct.pack("<%dq" % n, *ptrs) + struct.pack("<%dq" % (n + 1), *range(n + 1))


sizes = [3, 1, 4]
ids = struct.pack("<8i", 5, 6, 7, 999, 1, 2, 3, 4)
mask = bytes([0, 1, 1, 1, 0, 0, 1, 1])
put("token_cache", "three_seqs", mmidx(4, sizes, 4) + SEP + ids + SEP + mmidx(1, sizes, 1) + SEP + mask)

# ---- trainer_state.json
put("train_state", "state.json", json.dumps({"step": 12, "epoch": 1, "next_row": 8, "skipped_steps": 0,
                                             "tokens_seen": "123456", "optimizer_step": 12,
                                             "dropout_seed": "1234567890123", "seed": "42"}, indent=2))

# ---- JSON data: gzip'd JSONL and a top-level array
put("json", "alpaca3.jsonl.gz", gzip.compress(b"".join(open(os.path.join(fx, "datasets", "alpaca.jsonl"), "rb").readlines()[:3]), mtime=0))
put("json", "messages2.json", json.dumps([json.loads(l) for l in open(os.path.join(fx, "datasets", "messages.jsonl"))][:2]))

# ---- Jinja: every template of the Jinja conformance cases
n = 0
for line in open(os.path.join(fx, "chat_templates", "jinja_cases.jsonl")):
    c = json.loads(line)
    src = c.get("template") or c.get("source")
    if src:
        put("jinja", "case%03d.jinja" % n, src)
        n += 1
