"""tiktoken_check.py — herd's BPE encoder against Python tiktoken.

Builds a tiktoken.Encoding from herd's rank file, herd's pre-split pattern and
Llama 3's special tokens, encodes every text with both, and prints
"PASS name" / "FAIL name" per case.

usage: python3 tiktoken_check.py HERD RANKS WORKDIR
"""
import base64
import random
import subprocess
import sys

import tiktoken

HERD, RANKS, WORK = sys.argv[1:4]

# the pattern of src/data/tokenizer.h (HERD_TOK_PATTERN), Llama 3's
PAT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"

ranks = {}
with open(RANKS, "rb") as f:
    for line in f:
        if line.strip():
            tok, r = line.split()
            ranks[base64.b64decode(tok)] = int(r)
n = len(ranks)
names = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
         "<|reserved_special_token_1|>", "<|reserved_special_token_2|>",
         "<|reserved_special_token_3|>", "<|start_header_id|>", "<|end_header_id|>",
         "<|reserved_special_token_4|>", "<|eot_id|>"]
names += [f"<|reserved_special_token_{i}|>" for i in range(5, 256 - 5)]
enc = tiktoken.Encoding(name="herd-test", pat_str=PAT, mergeable_ranks=ranks,
                        special_tokens={s: n + i for i, s in enumerate(names)})


def herd_ids_all(items, special):
    """herd's ids for every text, one herd process (a line of ids per file)."""
    paths = []
    for k, (name, text) in enumerate(items):
        path = f"{WORK}/text{k}.txt"
        with open(path, "wb") as f:
            f.write(text.encode("utf-8"))
        paths.append(path)
    cmd = [HERD, "data", "encode", "--tokenizer", RANKS] + (["--special"] if special else []) + paths
    lines = subprocess.run(cmd, check=True, capture_output=True).stdout.decode().split("\n")
    return {name: [int(x) for x in lines[k].split()] for k, (name, _) in enumerate(items)}


texts = {
    "english": "The quick brown fox jumps over the lazy dog. It's 5 o'clock; we'll see, THEY'RE here.",
    "contractions": "I'm you're he'd she'll they've it's don't I'M YOU'RE 's 't 'll'd''ve ſ'ſ 'ſ",
    "digits": "1 12 123 1234 12345 3.14159 1,000,000 2024-11-25 0x1F 1e-9 ٣٤٥ ১২৩৪ ⅣⅫ ²³",
    "whitespace": "a  b   c\t\td\n\ne \n  \n f\r\n\r\ng    \n\n\n   h \u00a0\u3000i\u2003 j \t \n",
    "unicode": "Grüße, Jürgen! Ça va? Ελληνικά; русский текст; 日本語のテキスト; 中文字符; 한국어; "
               "العربية; हिन्दी; emoji 🎉🚀👍🏽 and ZWJ 👨‍👩‍👧 — “quotes” «guillemets» …",
    "code": open("/usr/include/stdio.h", encoding="utf-8", errors="replace").read()[:6000],
    "specials": "<|begin_of_text|>Hello<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nhi"
                "<|reserved_special_token_17|><|not_special|><|end_of_text|>",
    "edge_ends": "   ",
    "edge_nl": "\n",
    "edge_punct": "!!!???...\n\n---",
}
lr = random.Random(9)
texts["long_letters"] = "".join(lr.choice("thequickbrownfoxlicense") for _ in range(3000))  # one piece, heap merge
texts["long_symbols"] = " " + "".join(lr.choice("=-*#/.,;:!?()") for _ in range(2000)) + "\n"
texts["long_spaces"] = " " * 5000 + "x" + "\t" * 700 + "\n" * 300
alphabet = list("aZ9 \t\n\r'’sStTlLdD.,;!?-_()[]{}<>|=+*/\\\"#@$%^&~`") + \
           ["é", "ß", "ж", "日", "٣", "²", "Ⅳ", "\u00a0", "\u2003", "\u3000", "🎉", "ſ", "\u0301", "\x0b", "\x0c", "\x85"]
rng = random.Random(4)
for k in range(200):
    texts[f"random_{k}"] = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 120)))

got_all = herd_ids_all([(k, v) for k, v in texts.items() if k != "specials"], False)
got_all.update(herd_ids_all([("specials", texts["specials"])], True))
failed = 0
fuzz_ok = True
for name, text in texts.items():
    special = name == "specials"
    want = enc.encode(text, allowed_special="all") if special else enc.encode_ordinary(text)
    got = got_all[name]
    ok = want == got and enc.decode_bytes(got) == text.encode("utf-8")
    if not ok:
        failed += 1
        print(f"  {name}: tiktoken {want[:40]} herd {got[:40]}", file=sys.stderr)
    if name.startswith("random_"):
        fuzz_ok = fuzz_ok and ok
    else:
        print(("PASS" if ok else "FAIL"), f"tiktoken_equal_{name}")
print(("PASS" if fuzz_ok else "FAIL"), "tiktoken_equal_random_200_texts")
sys.exit(1 if failed else 0)
