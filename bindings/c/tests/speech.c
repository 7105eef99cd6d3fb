/*
 * Speech to text through the C ABI (C99), run by bindings/c/test.sh:
 *
 *   speech WHISPER.gguf CLIPS_DIR "EXPECTED TEXT OF speech_us.wav"
 *
 * 1. fennec_transcribe on speech_us.wav's samples must give the expected text (faster-whisper's,
 *    from tests/fixtures/whisper/goldens/transcripts.json);
 * 2. two_sentences.wav pushed as 16-bit PCM in 10 ms chunks through fennec_stt_push_i16 must
 *    give two utterances, in order (printed as FENNEC_HEARD lines for the script to check);
 * 3. bad arguments must give their status codes, a cancelled handle FENNEC_ERR_CANCELLED.
 * Prints FENNEC_SPEECH_OK at the end; exits 1 on the first failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fennec.h"

static int failures = 0;

#define CHECK(cond, what)                                                                   \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "FAIL %s (line %d): %s\n", what, __LINE__, fennec_last_error()); \
            failures++;                                                                     \
        }                                                                                   \
    } while (0)

#define EXPECT_STATUS(call, status) CHECK((call) == (status), #call " == " #status)

static unsigned read_le(const unsigned char *p, int n) {
    unsigned v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* A 16-bit PCM WAV file's samples (interleaved), rate and channels; NULL on failure. */
static int16_t *read_wav_i16(const char *path, size_t *n_samples, uint32_t *rate, uint32_t *channels) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char hdr[12], chunk[8], fmt[16];
    int16_t *samples = NULL;
    *rate = 0;
    if (fread(hdr, 1, 12, f) != 12 || memcmp(hdr, "RIFF", 4) || memcmp(hdr + 8, "WAVE", 4)) goto done;
    while (fread(chunk, 1, 8, f) == 8) {
        unsigned size = read_le(chunk + 4, 4);
        if (!memcmp(chunk, "fmt ", 4) && size >= 16) {
            if (fread(fmt, 1, 16, f) != 16) goto done;
            if (read_le(fmt, 2) != 1 || read_le(fmt + 14, 2) != 16) goto done; /* PCM, 16-bit */
            *channels = read_le(fmt + 2, 2);
            *rate = read_le(fmt + 4, 4);
            fseek(f, (long)(size - 16 + (size & 1)), SEEK_CUR);
        } else if (!memcmp(chunk, "data", 4) && *rate) {
            *n_samples = size / 2;
            samples = malloc(size);
            if (samples && fread(samples, 2, *n_samples, f) != *n_samples) {
                free(samples);
                samples = NULL;
            }
            goto done; /* little-endian host assumed (x86_64, aarch64) */
        } else {
            fseek(f, (long)(size + (size & 1)), SEEK_CUR);
        }
    }
done:
    fclose(f);
    return samples;
}

struct heard_list {
    int count;
    double start[8], end[8];
    size_t n_tokens[8];
};

static void on_heard(const fennec_heard *h, void *user) {
    struct heard_list *list = user;
    /* The text is NUL-terminated and text_len long. */
    if (strlen(h->text) != h->text_len) failures++;
    printf("FENNEC_HEARD %.3f %.3f %s\n", h->start_s, h->end_s, h->text);
    if (list->count < 8) {
        list->start[list->count] = h->start_s;
        list->end[list->count] = h->end_s;
        list->n_tokens[list->count] = h->n_tokens;
    }
    list->count++;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s WHISPER.gguf CLIPS_DIR EXPECTED_TEXT\n", argv[0]);
        return 2;
    }
    char path[4096];
    fennec_load_options lo = fennec_load_options_default();
    lo.n_threads = 2;

    /* Loading: errors first. */
    fennec_whisper *whisper = (fennec_whisper *)1;
    EXPECT_STATUS(fennec_whisper_load("/nonexistent/whisper.gguf", &lo, &whisper), FENNEC_ERR_IO);
    CHECK(whisper == NULL, "out is NULL after a failed load");
    EXPECT_STATUS(fennec_whisper_load(NULL, &lo, &whisper), FENNEC_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(fennec_whisper_load(argv[1], &lo, NULL), FENNEC_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(fennec_whisper_load(argv[1], &lo, &whisper), FENNEC_OK);
    if (!whisper) return 1;

    /* 1. One-shot transcription of speech_us.wav (16 kHz mono). */
    size_t n = 0;
    uint32_t rate = 0, channels = 0;
    snprintf(path, sizeof path, "%s/speech_us.wav", argv[2]);
    int16_t *pcm = read_wav_i16(path, &n, &rate, &channels);
    CHECK(pcm != NULL && channels == 1, "read speech_us.wav");
    if (!pcm) return 1;
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)pcm[i] / 32768.0f;
    char *text = NULL;
    size_t text_len = 0;
    fennec_transcript_info info;
    EXPECT_STATUS(fennec_transcribe(whisper, x, n, rate, NULL, NULL, &text, &text_len, &info), FENNEC_OK);
    if (text) {
        printf("FENNEC_TEXT %s\n", text);
        CHECK(strcmp(text, argv[3]) == 0, "speech_us.wav's transcript is faster-whisper's");
        CHECK(strlen(text) == text_len, "text_len");
        CHECK(info.n_tokens > 0 && !info.skipped_as_no_speech, "info");
        CHECK(info.encode_seconds > 0 && info.audio_seconds > 2.7 && info.audio_seconds < 2.8, "timings");
        fennec_buffer_free((uint8_t *)text, text_len + 1);
    }

    /* Bad arguments and cancellation. */
    text = (char *)1;
    EXPECT_STATUS(fennec_transcribe(whisper, x, 0, 16000, NULL, NULL, &text, &text_len, NULL),
                  FENNEC_ERR_INVALID_ARGUMENT);
    CHECK(text == NULL, "text is NULL after a failure");
    EXPECT_STATUS(fennec_transcribe(whisper, x, n, 0, NULL, NULL, &text, &text_len, NULL),
                  FENNEC_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(fennec_transcribe(whisper, NULL, n, 16000, NULL, NULL, &text, &text_len, NULL),
                  FENNEC_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(fennec_transcribe(NULL, x, n, 16000, NULL, NULL, &text, &text_len, NULL),
                  FENNEC_ERR_NULL_ARGUMENT);
    fennec_transcribe_options short_limit = fennec_transcribe_options_default();
    short_limit.max_audio_s = 1.0f;
    EXPECT_STATUS(fennec_transcribe(whisper, x, n, 16000, &short_limit, NULL, &text, &text_len, NULL),
                  FENNEC_ERR_INVALID_ARGUMENT);
    fennec_cancel *cancel = NULL;
    EXPECT_STATUS(fennec_cancel_new(&cancel), FENNEC_OK);
    EXPECT_STATUS(fennec_cancel_cancel(cancel), FENNEC_OK);
    EXPECT_STATUS(fennec_transcribe(whisper, x, n, 16000, NULL, cancel, &text, &text_len, NULL),
                  FENNEC_ERR_CANCELLED);
    fennec_cancel_free(cancel);

    /* 2. A stream: two_sentences.wav as 16-bit PCM in 10 ms chunks. */
    fennec_vad_config bad_vad = fennec_vad_config_default();
    bad_vad.threshold = 0.0f;
    fennec_stt *stt = (fennec_stt *)1;
    EXPECT_STATUS(fennec_stt_new(whisper, &bad_vad, NULL, &stt), FENNEC_ERR_INVALID_ARGUMENT);
    CHECK(stt == NULL, "out is NULL after a failed fennec_stt_new");
    EXPECT_STATUS(fennec_stt_new(whisper, NULL, NULL, &stt), FENNEC_OK);
    fennec_whisper_free(whisper); /* the stream keeps the model alive */
    if (!stt) return 1;

    free(pcm);
    snprintf(path, sizeof path, "%s/two_sentences.wav", argv[2]);
    pcm = read_wav_i16(path, &n, &rate, &channels);
    CHECK(pcm != NULL, "read two_sentences.wav");
    if (!pcm) return 1;
    struct heard_list heard = {0};
    size_t chunk = rate / 100 * channels;
    int speaking = 0;
    for (size_t i = 0; i < n; i += chunk) {
        size_t len = n - i < chunk ? n - i : chunk;
        EXPECT_STATUS(fennec_stt_push_i16(stt, pcm + i, len, rate, channels, on_heard, &heard), FENNEC_OK);
        speaking |= fennec_stt_in_speech(stt);
    }
    CHECK(speaking, "in_speech during a sentence");
    EXPECT_STATUS(fennec_stt_finish(stt, on_heard, &heard), FENNEC_OK);
    CHECK(heard.count == 2, "two utterances");
    if (heard.count == 2) {
        CHECK(heard.end[0] < heard.start[1], "utterances in order");
        CHECK(heard.n_tokens[0] > 0 && heard.n_tokens[1] > 0, "tokens");
    }

    /* Bad pushes, cancel, reset. */
    EXPECT_STATUS(fennec_stt_push_i16(stt, pcm, 3, 16000, 2, NULL, NULL), FENNEC_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(fennec_stt_push_i16(stt, pcm, 10, 0, 1, NULL, NULL), FENNEC_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(fennec_stt_push_i16(stt, pcm, 10, 16000, 0, NULL, NULL), FENNEC_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(fennec_stt_push_f32(stt, NULL, 10, 16000, 1, NULL, NULL), FENNEC_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(fennec_stt_push_i16(NULL, pcm, 10, 16000, 1, NULL, NULL), FENNEC_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(fennec_stt_reset(stt), FENNEC_OK);
    struct heard_list after_cancel = {0};
    EXPECT_STATUS(fennec_stt_push_i16(stt, pcm, n / 3, rate, channels, on_heard, &after_cancel), FENNEC_OK);
    EXPECT_STATUS(fennec_stt_cancel(stt), FENNEC_OK);
    EXPECT_STATUS(fennec_stt_finish(stt, on_heard, &after_cancel), FENNEC_ERR_CANCELLED);
    CHECK(after_cancel.count == 0, "nothing heard from a cancelled utterance");
    /* The stream goes on: float samples of the whole clip after a reset. */
    EXPECT_STATUS(fennec_stt_reset(stt), FENNEC_OK);
    float *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) y[i] = (float)pcm[i] / 32768.0f;
    struct heard_list again = {0};
    EXPECT_STATUS(fennec_stt_push_f32(stt, y, n, rate, channels, on_heard, &again), FENNEC_OK);
    EXPECT_STATUS(fennec_stt_finish(stt, on_heard, &again), FENNEC_OK);
    CHECK(again.count == 2, "two utterances again (float samples)");
    CHECK(!fennec_stt_in_speech(NULL), "NULL is not speaking");

    fennec_stt_free(stt);
    fennec_stt_free(NULL);
    fennec_whisper_free(NULL);
    free(y);
    free(x);
    free(pcm);
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("FENNEC_SPEECH_OK\n");
    return 0;
}
