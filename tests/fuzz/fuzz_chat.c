/* fuzz_chat.c — the chat JSONL readers (src/data/chat.c, src/base/json.c): one line per
 * conversation or preference pair, read as prompts (encoded with both chat
 * templates), as SFT data and as preference data through a small BPE
 * tokenizer trained at start-up. */
#include "src/data/chat.h"
#include "src/data/tokenizer.h"
#include "tests/fuzz/fuzz.h"

static herd_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init(argc, argv);
    static const char text[] = "The user asks; the assistant answers. 12 + 30 = 42.\n"
                               "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n";
    if (herd_tokenizer_train(&tok, (const unsigned char *)text, sizeof text - 1, 300)) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_path(data, size);
    if (!path) return 0;
    herd_chat *chats;
    int n;
    if (herd_chat_load_jsonl(path, &chats, &n) == 0) {
        for (int i = 0; i < n; i++) {
            for (int tpl = HERD_CHAT_LLAMA3; tpl <= HERD_CHAT_LLAMA31; tpl++) {
                herd_chat_tokens tk = {0};
                herd_tokenizer_set_chat_template(tok, (herd_chat_template)tpl);
                herd_chat_encode(tok, &chats[i], 1, 1, &tk);
                herd_chat_tokens_free(&tk);
            }
            herd_tokenizer_set_chat_template(tok, HERD_CHAT_LLAMA3);
            herd_chat_free(&chats[i]);
        }
        free(chats);
    }
    herd_sft_data sft;
    if (herd_sft_data_load(&sft, path, tok, 64) == 0) herd_sft_data_free(&sft);
    herd_pref_data pref;
    if (herd_pref_data_load(&pref, path, tok, 64) == 0) herd_pref_data_free(&pref);
    return 0;
}
