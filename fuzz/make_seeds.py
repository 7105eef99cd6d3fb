#!/usr/bin/env python3
"""Write the fuzz seed corpus with gguf-py's writer (pinned gguf==0.19.0, numpy).

Rerun: python3 fuzz/make_seeds.py  (overwrites fuzz/corpus/gguf_parse/seed-*.gguf)
"""
import os

import numpy as np
from gguf import GGUFWriter, GGMLQuantizationType

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "gguf_parse")


def write(name, fill):
    path = os.path.join(OUT, name)
    w = GGUFWriter(path, "llama")
    fill(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def minimal(w):
    w.add_block_count(1)


def typed(w):
    w.add_uint8("t.u8", 1)
    w.add_int8("t.i8", -1)
    w.add_uint16("t.u16", 2)
    w.add_int16("t.i16", -2)
    w.add_uint32("t.u32", 3)
    w.add_int32("t.i32", -3)
    w.add_float32("t.f32", 0.5)
    w.add_bool("t.bool", True)
    w.add_string("t.str", "fennec")
    w.add_uint64("t.u64", 4)
    w.add_int64("t.i64", -4)
    w.add_float64("t.f64", 0.25)
    w.add_array("t.arr", [1, 2, 3])
    w.add_array("t.strs", ["a", "bc"])
    w.add_tensor("a", np.arange(8, dtype=np.float32).reshape(2, 4))


def tokenizer(w):
    w.add_tokenizer_model("gpt2")
    w.add_token_list(["<s>", "</s>", "a", "b", "ab"])
    w.add_token_merges(["a b"])
    w.add_bos_token_id(0)
    w.add_eos_token_id(1)
    w.add_tensor("token_embd.weight", np.zeros((5, 32), dtype=np.float16))
    q = np.zeros((2, 34), dtype=np.uint8)
    w.add_tensor("blk.0.attn_q.weight", q, raw_dtype=GGMLQuantizationType.Q8_0)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    write("seed-minimal.gguf", minimal)
    write("seed-typed.gguf", typed)
    write("seed-tokenizer.gguf", tokenizer)
