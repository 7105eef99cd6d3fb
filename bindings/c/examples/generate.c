/*
 * A small real program over Fennec's C ABI, and the C side of bindings/c/test.sh.
 *
 *   generate MODEL.gguf [N_TOKENS=12] [N_THREADS=2] [quick]
 *
 * Chats one turn greedily (streamed to stdout), then checks: cancelling from the piece
 * callback and from another thread, save/restore to a file and to memory, error codes for a
 * bad path, a malformed GGUF and NULL arguments, two sessions on one model on two threads,
 * and a session outliving its model. Prints "FENNEC_TOKENS id id ..." (the greedy reply) and
 * "FENNEC_OK_ALL" at the end; exits 1 on the first failed check. "quick" (for valgrind and
 * qemu) leaves out the two-thread and cancel-from-another-thread checks.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fennec.h"

#define MAX_IDS 512

static int failures = 0;

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "CHECK FAILED %s:%d: %s: ", __FILE__, __LINE__, #cond);        \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fprintf(stderr, " (last error: %s)\n", fennec_last_error());                   \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

#define OK(call)                                                                           \
    do {                                                                                   \
        fennec_status st_ = (call);                                                        \
        CHECK(st_ == FENNEC_OK, "%s returned %s", #call, fennec_status_name(st_));        \
    } while (0)

/* What a piece callback collects. */
typedef struct {
    int32_t ids[MAX_IDS];
    size_t n;
    int print;                   /* stream text to stdout */
    size_t cancel_after;         /* cancel `cancel` after this many tokens (0 = never) */
    const fennec_cancel *cancel;
    volatile int started;        /* set at the first token (another thread waits for it) */
    pthread_mutex_t lock;
} collector;

static void collector_init(collector *c) {
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
}

static bool on_piece(const char *text, size_t len, int32_t token, void *user) {
    collector *c = (collector *)user;
    if (c->print && len > 0) {
        fwrite(text, 1, len, stdout);
        fflush(stdout);
    }
    if (token >= 0 && c->n < MAX_IDS) {
        c->ids[c->n++] = token;
    }
    pthread_mutex_lock(&c->lock);
    c->started = 1;
    pthread_mutex_unlock(&c->lock);
    if (c->cancel_after > 0 && c->n == c->cancel_after) {
        OK(fennec_cancel_cancel(c->cancel));
    }
    return true;
}

static const fennec_message CHAT[] = {
    {"user", "What is the capital of France?"},
};

static fennec_generate_options greedy(uint32_t max_tokens) {
    fennec_generate_options o = fennec_generate_options_default();
    o.max_tokens = max_tokens;
    o.temperature = 0.0f;
    return o;
}

static int same_ids(const collector *a, const collector *b) {
    return a->n == b->n && memcmp(a->ids, b->ids, a->n * sizeof a->ids[0]) == 0;
}

/* ---- two sessions on one model on two threads ------------------------------------------ */
typedef struct {
    const fennec_model *model;
    uint32_t n_tokens;
    collector out;
    fennec_status status;
} chat_job;

static void *chat_thread(void *arg) {
    chat_job *job = (chat_job *)arg;
    fennec_session_options so = fennec_session_options_default();
    so.n_ctx = 256;
    fennec_session *s = NULL;
    job->status = fennec_session_new(job->model, &so, &s);
    if (job->status != FENNEC_OK) return NULL;
    fennec_generate_options go = greedy(job->n_tokens);
    job->status = fennec_session_chat(s, CHAT, 1, &go, NULL, on_piece, &job->out, NULL);
    fennec_session_free(s);
    return NULL;
}

/* ---- cancel from another thread -------------------------------------------------------- */
typedef struct {
    collector *watch;
    const fennec_cancel *cancel;
} canceller;

static void *cancel_thread(void *arg) {
    canceller *c = (canceller *)arg;
    for (;;) {
        pthread_mutex_lock(&c->watch->lock);
        int started = c->watch->started;
        pthread_mutex_unlock(&c->watch->lock);
        if (started) break;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    fennec_cancel_cancel(c->cancel);
    return NULL;
}

static void log_cb(int level, const char *target, const char *msg, void *user) {
    int *count = (int *)user;
    (*count)++;
    fprintf(stderr, "[fennec log %d %s] %s\n", level, target, msg);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.gguf [N_TOKENS] [N_THREADS]\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    uint32_t n_tokens = argc > 2 ? (uint32_t)atoi(argv[2]) : 12;
    uint32_t n_threads = argc > 3 ? (uint32_t)atoi(argv[3]) : 2;
    int quick = argc > 4 && strcmp(argv[4], "quick") == 0;
    fprintf(stderr, "fennec %s\n", fennec_version());

    int n_logs = 0;
    OK(fennec_set_log_callback(log_cb, &n_logs, FENNEC_LOG_INFO));
    OK(fennec_set_log_callback(log_cb, &n_logs, FENNEC_LOG_INFO)); /* twice is fine */

    /* Errors: a bad path, a malformed GGUF, NULL arguments. */
    fennec_model *model = (fennec_model *)&n_logs; /* must be overwritten with NULL */
    fennec_status st = fennec_model_load("/nonexistent/model.gguf", NULL, &model);
    CHECK(st == FENNEC_ERR_IO, "bad path gave %s", fennec_status_name(st));
    CHECK(model == NULL, "out not cleared");
    CHECK(strlen(fennec_last_error()) > 0, "no message");
    CHECK(strstr(fennec_last_error(), "nonexistent") != NULL, "message lacks the path: %s",
          fennec_last_error());
    char garbage[] = "/tmp/fennec-garbage-XXXXXX";
    int fd = mkstemp(garbage);
    CHECK(fd >= 0, "mkstemp");
    CHECK(write(fd, "GGUFnot really a model at all", 29) == 29, "write");
    close(fd);
    st = fennec_model_load(garbage, NULL, &model);
    unlink(garbage);
    CHECK(st == FENNEC_ERR_INVALID_GGUF, "garbage gave %s", fennec_status_name(st));
    st = fennec_model_load(NULL, NULL, &model);
    CHECK(st == FENNEC_ERR_NULL_ARGUMENT, "NULL path gave %s", fennec_status_name(st));
    CHECK(strcmp(fennec_status_name(FENNEC_ERR_CONTEXT_FULL), "context_full") == 0, "name");

    /* Load. */
    fennec_load_options lo = fennec_load_options_default();
    lo.n_threads = n_threads;
    OK(fennec_model_load(path, &lo, &model));
    fennec_model_info info;
    OK(fennec_model_get_info(model, &info));
    {
        /* Resident memory after load (the weights stay mapped: only touched pages count). */
        FILE *f = fopen("/proc/self/status", "r");
        char line[256];
        while (f && fgets(line, sizeof line, f)) {
            if (strncmp(line, "VmRSS:", 6) == 0) fprintf(stderr, "after load: %s", line);
        }
        if (f) fclose(f);
    }
    fprintf(stderr, "model: %s, n_vocab %u, n_ctx_train %u, %u threads\n", info.architecture,
            info.n_vocab, info.n_ctx_train, info.n_threads);

    /* Tokenize / detokenize round trip, snprintf-style sizes. */
    size_t n_ids = 0;
    OK(fennec_tokenize(model, "Hello, fennec!", false, false, NULL, 0, &n_ids));
    CHECK(n_ids > 0, "no tokens");
    uint32_t ids[64];
    OK(fennec_tokenize(model, "Hello, fennec!", false, false, ids, 64, &n_ids));
    char text[64];
    size_t len = 0;
    OK(fennec_detokenize(model, ids, n_ids, text, sizeof text, &len));
    CHECK(strcmp(text, "Hello, fennec!") == 0 && len == 14, "round trip gave '%s'", text);
    OK(fennec_detokenize(model, ids, n_ids, text, 4, &len));
    CHECK(len == 14 && strcmp(text, "Hel") == 0, "truncation gave '%s' %zu", text, len);

    /* One chat turn, greedy, streamed. */
    fennec_session_options so = fennec_session_options_default();
    so.n_ctx = 256;
    fennec_session *session = NULL;
    OK(fennec_session_new(model, &so, &session));
    CHECK(n_logs > 0, "no log message forwarded"); /* "session created" is at info */
    OK(fennec_set_log_callback(NULL, NULL, FENNEC_LOG_OFF));
    fennec_generate_options go = greedy(n_tokens);
    collector reply;
    collector_init(&reply);
    reply.print = 1;
    fennec_completion done;
    printf("assistant: ");
    OK(fennec_session_chat(session, CHAT, 1, &go, NULL, on_piece, &reply, &done));
    printf("\n");
    CHECK(done.generated_tokens == reply.n, "%u generated, %zu seen", done.generated_tokens,
          reply.n);
    CHECK(done.prompt_tokens > 0, "no prompt tokens");
    printf("FENNEC_TOKENS");
    for (size_t i = 0; i < reply.n; i++) printf(" %d", reply.ids[i]);
    printf("\n");
    fprintf(stderr, "chat: %u prompt tokens in %.3f s, %u generated in %.3f s (stop %u)\n",
            done.prompt_tokens, done.prompt_seconds, done.generated_tokens,
            done.generation_seconds, (unsigned)done.stop);

    /* Save and restore (file and memory): same context, same continuation. */
    char saved[] = "/tmp/fennec-session-XXXXXX";
    fd = mkstemp(saved);
    CHECK(fd >= 0, "mkstemp");
    close(fd);
    OK(fennec_session_save_file(session, saved));
    fennec_session *from_file = NULL, *from_memory = NULL;
    OK(fennec_session_restore_file(model, saved, &from_file));
    unlink(saved);
    uint8_t *bytes = NULL;
    size_t n_bytes = 0;
    OK(fennec_session_save_buffer(session, &bytes, &n_bytes));
    CHECK(n_bytes > 0, "empty save");
    OK(fennec_session_restore_buffer(model, bytes, n_bytes, &from_memory));
    fennec_session_free(from_memory);
    st = fennec_session_restore_buffer(model, bytes, n_bytes / 2, &from_memory);
    CHECK(st == FENNEC_ERR_CORRUPT_SESSION || st == FENNEC_ERR_IO, "half a save gave %s",
          fennec_status_name(st));
    CHECK(from_memory == NULL, "out not cleared");
    OK(fennec_session_restore_buffer(model, bytes, n_bytes, &from_memory));
    fennec_buffer_free(bytes, n_bytes);
    fennec_session_info a, b, c;
    OK(fennec_session_get_info(session, &a));
    OK(fennec_session_get_info(from_file, &b));
    OK(fennec_session_get_info(from_memory, &c));
    CHECK(a.n_past == b.n_past && a.n_past == c.n_past && a.n_past > 0, "n_past %u %u %u",
          a.n_past, b.n_past, c.n_past);
    {
        fennec_generate_options g3 = greedy(3);
        collector x, y, z;
        collector_init(&x);
        collector_init(&y);
        collector_init(&z);
        OK(fennec_session_generate(session, " And", &g3, NULL, on_piece, &x, NULL));
        OK(fennec_session_generate(from_file, " And", &g3, NULL, on_piece, &y, NULL));
        OK(fennec_session_generate(from_memory, " And", &g3, NULL, on_piece, &z, NULL));
        CHECK(same_ids(&x, &y) && same_ids(&x, &z), "restored sessions continue differently");
    }
    fennec_session_free(from_file);
    fennec_session_free(from_memory);

    /* Cancel from the callback: stops after exactly 2 tokens. */
    fennec_cancel *cancel = NULL;
    OK(fennec_cancel_new(&cancel));
    OK(fennec_session_reset(session));
    {
        collector x;
        collector_init(&x);
        x.cancel = cancel;
        x.cancel_after = 2;
        fennec_generate_options g = greedy(64);
        OK(fennec_session_chat(session, CHAT, 1, &g, cancel, on_piece, &x, &done));
        CHECK(done.stop == FENNEC_STOP_CANCELLED, "stop %u", (unsigned)done.stop);
        CHECK(done.generated_tokens == 2, "%u tokens", done.generated_tokens);
        CHECK(fennec_cancel_is_cancelled(cancel), "not cancelled");
        /* A cancelled handle stops the next call at once, until reset. */
        OK(fennec_session_generate(session, " Again", &g, cancel, on_piece, &x, &done));
        CHECK(done.stop == FENNEC_STOP_CANCELLED && done.generated_tokens == 0, "stale");
        OK(fennec_cancel_reset(cancel));
    }

    /* Cancel from another thread. */
    if (!quick) {
        collector x;
        collector_init(&x);
        canceller k = {&x, cancel};
        pthread_t t;
        CHECK(pthread_create(&t, NULL, cancel_thread, &k) == 0, "pthread_create");
        fennec_generate_options g = greedy(200);
        OK(fennec_session_generate(session, " Tell me more.", &g, cancel, on_piece, &x,
                                   &done));
        pthread_join(t, NULL);
        CHECK(done.stop == FENNEC_STOP_CANCELLED, "stop %u after %u tokens",
              (unsigned)done.stop, done.generated_tokens);
        CHECK(done.generated_tokens < 200, "not cancelled");
        fprintf(stderr, "cancelled from another thread after %u tokens\n",
                done.generated_tokens);
    }
    fennec_cancel_free(cancel);

    /* Two sessions on one model on two threads: each gives the same greedy reply. */
    if (!quick) {
        chat_job jobs[2];
        pthread_t threads[2];
        for (int i = 0; i < 2; i++) {
            memset(&jobs[i], 0, sizeof jobs[i]);
            jobs[i].model = model;
            jobs[i].n_tokens = n_tokens;
            collector_init(&jobs[i].out);
            CHECK(pthread_create(&threads[i], NULL, chat_thread, &jobs[i]) == 0, "thread");
        }
        for (int i = 0; i < 2; i++) {
            pthread_join(threads[i], NULL);
            CHECK(jobs[i].status == FENNEC_OK, "thread %d: %s", i,
                  fennec_status_name(jobs[i].status));
            CHECK(same_ids(&jobs[i].out, &reply), "thread %d replied differently", i);
        }
    }

    /* NULL arguments are errors, not crashes. */
    CHECK(fennec_session_chat(NULL, CHAT, 1, &go, NULL, NULL, NULL, NULL) ==
              FENNEC_ERR_NULL_ARGUMENT, "NULL session");
    CHECK(fennec_session_chat(session, NULL, 1, &go, NULL, NULL, NULL, NULL) ==
              FENNEC_ERR_NULL_ARGUMENT, "NULL messages");
    {
        const fennec_message bad[] = {{"user", "\xff\xfe"}};
        st = fennec_session_chat(session, bad, 1, &go, NULL, NULL, NULL, NULL);
        CHECK(st == FENNEC_ERR_INVALID_UTF8, "bad UTF-8 gave %s", fennec_status_name(st));
    }

    /* The model freed first: the session keeps it alive and still gives the same reply. */
    fennec_model_free(model);
    model = NULL;
    OK(fennec_session_reset(session));
    {
        collector x;
        collector_init(&x);
        OK(fennec_session_chat(session, CHAT, 1, &go, NULL, on_piece, &x, NULL));
        CHECK(same_ids(&x, &reply), "reply changed after the model was freed");
    }
    fennec_session_free(session);

    if (failures == 0) printf("FENNEC_OK_ALL\n");
    return failures == 0 ? 0 : 1;
}
