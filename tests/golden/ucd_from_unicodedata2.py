"""ucd_from_unicodedata2.py — a UnicodeData.txt with the fields gen_unicode.sh reads.

Where www.unicode.org cannot be reached but PyPI can, the unicodedata2 package
of the wanted version (built from that version's UCD) gives the same general
categories: one line "CODE;NAME;CATEGORY;" per assigned code point.

usage: python3 ucd_from_unicodedata2.py UNICODEDATA2_DIR OUT_DIR
  (UNICODEDATA2_DIR: pip install --target DIR unicodedata2==16.0.0)
"""
import os
import sys

sys.path.insert(0, sys.argv[1])
import unicodedata2 as ud  # noqa: E402

out = sys.argv[2]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "UnicodeData.txt"), "w") as f:
    for c in range(0x110000):
        cat = ud.category(chr(c))
        if cat != "Cn":
            f.write(f"{c:04X};{ud.name(chr(c), 'U+%04X' % c)};{cat};\n")
with open(os.path.join(out, "VERSION"), "w") as f:
    f.write(ud.unidata_version + "\n")
print(ud.unidata_version)
