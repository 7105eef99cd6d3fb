"""The generated Python module on real models: greedy equality with the Rust path,
streaming, cancellation, save/restore, typed errors, threads, images.

Run by bindings/uniffi/test.sh, which generates `fennec.py` beside the cdylib, puts it on
PYTHONPATH and sets:
  FENNEC_SMOLLM2         path of SmolLM2-135M-Instruct.Q4_1.gguf
  FENNEC_EXPECTED        JSON of `fennec run --chat --json` for PROMPT (the Rust result)
  FENNEC_VISION_DIR      tests/fixtures/llama4_vision
"""

import gc
import json
import os
import tempfile
import threading
import unittest

import fennec

PROMPT = "What is the capital of France?"
MAX_TOKENS = 24


def greedy(n=MAX_TOKENS):
    return fennec.GenerateOptions(max_tokens=n)


class Collect(fennec.PieceListener):
    """Records pieces; optionally cancels a token after `cancel_after` pieces."""

    def __init__(self, cancel=None, cancel_after=None):
        self.pieces = []
        self.cancel = cancel
        self.cancel_after = cancel_after

    def on_piece(self, piece):
        self.pieces.append(piece)
        if self.cancel is not None and len(self.pieces) == self.cancel_after:
            self.cancel.cancel()
        return True


class SmolLM2(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = fennec.Model.load(os.environ["FENNEC_SMOLLM2"], fennec.LoadOptions(n_threads=2))
        cls.expected = json.loads(os.environ["FENNEC_EXPECTED"])

    def session(self, n_ctx=1024):
        return fennec.Session(self.model, fennec.SessionOptions(n_ctx=n_ctx))

    def chat(self, session, listener=None, cancel=None, n=MAX_TOKENS):
        messages = [fennec.ChatMessage(role="user", text=PROMPT)]
        return session.chat(messages, greedy(n), listener, cancel)

    def test_greedy_chat_equals_rust_token_for_token_and_streams(self):
        listener = Collect()
        done = self.chat(self.session(), listener)
        self.assertEqual(done.tokens, self.expected["tokens"])
        self.assertEqual(done.text, self.expected["text"])
        self.assertEqual("".join(p.text for p in listener.pieces), done.text)
        self.assertEqual([p.token for p in listener.pieces if p.token is not None],
                         done.tokens[: len([p for p in listener.pieces if p.token is not None])])
        self.assertEqual(done.stats.prompt_tokens, len(self.expected["prompt_tokens"]))
        info = self.model.info()
        self.assertEqual(info.architecture, "llama")
        self.assertFalse(info.has_vision)

    def test_cancel_mid_generation_from_the_listener_and_from_another_thread(self):
        cancel = fennec.CancelToken()
        done = self.chat(self.session(), Collect(cancel, cancel_after=3), cancel)
        self.assertEqual(done.stop_reason, fennec.StopReason.CANCELLED)
        self.assertEqual(len(done.tokens), 3)

        cancel = fennec.CancelToken()
        started = threading.Event()

        class Slow(fennec.PieceListener):
            def on_piece(self, piece):
                started.set()
                return True

        session = self.session()
        result = {}
        worker = threading.Thread(
            target=lambda: result.setdefault("done", self.chat(session, Slow(), cancel, n=0)))
        worker.start()
        self.assertTrue(started.wait(60))
        cancel.cancel()
        worker.join(60)
        self.assertFalse(worker.is_alive())
        self.assertEqual(result["done"].stop_reason, fennec.StopReason.CANCELLED)
        self.assertLess(len(result["done"].tokens), 1024)

    def test_save_and_restore_continue_like_the_original(self):
        session = self.session()
        self.chat(session, n=4)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "chat.fnss")
            session.save(path)
            restored = fennec.Session.restore(self.model, path)
        from_bytes = fennec.Session.from_bytes(self.model, session.to_bytes())
        self.assertEqual(restored.tokens(), session.tokens())
        follow = " Tell me more."
        a = session.generate(follow, greedy(8))
        b = restored.generate(follow, greedy(8))
        c = from_bytes.generate(follow, greedy(8))
        self.assertEqual(a.tokens, b.tokens)
        self.assertEqual(a.tokens, c.tokens)
        with self.assertRaises(fennec.FennecError.CorruptSession):
            fennec.Session.from_bytes(self.model, b"FNSS" + bytes(64))

    def test_errors_are_typed(self):
        with self.assertRaises(fennec.FennecError.Io) as e:
            fennec.Model.load("/nonexistent/model.gguf", fennec.LoadOptions())
        self.assertIn("nonexistent", str(e.exception))
        with tempfile.NamedTemporaryFile(suffix=".gguf") as f:
            f.write(b"GGUF\x03\x00\x00\x00" + b"\xff" * 40)
            f.flush()
            with self.assertRaises(fennec.FennecError.InvalidGguf):
                fennec.Model.load(f.name, fennec.LoadOptions())
        with self.assertRaises(fennec.FennecError.ContextFull):
            self.session(n_ctx=8).generate("word " * 50, greedy(4))
        with self.assertRaises(fennec.FennecError.InvalidArgument):
            self.chat_with_image_on_a_text_model()

    def chat_with_image_on_a_text_model(self):
        png = os.path.join(os.environ["FENNEC_VISION_DIR"], "images", "tiny.png")
        image = fennec.Image.from_file(png)
        self.session().chat([fennec.ChatMessage(role="user", text="?", images=[image])], greedy(2))

    def test_two_sessions_on_two_threads_and_a_model_released_early(self):
        model = fennec.Model.load(os.environ["FENNEC_SMOLLM2"], fennec.LoadOptions(n_threads=2))
        sessions = [fennec.Session(model, fennec.SessionOptions(n_ctx=256)) for _ in range(2)]
        del model
        gc.collect()  # the sessions keep the model alive
        results = [None, None]

        def run(i):
            messages = [fennec.ChatMessage(role="user", text=PROMPT)]
            results[i] = sessions[i].chat(messages, greedy()).tokens

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(results[0], self.expected["tokens"])
        self.assertEqual(results[1], self.expected["tokens"])


class Logging(unittest.TestCase):
    def test_log_records_reach_the_listener_up_to_its_level(self):
        class Records(fennec.LogListener):
            def __init__(self):
                self.records = []

            def on_log(self, level, target, message):
                self.records.append((level, target, message))

        records = Records()
        fennec.set_log_listener(records, fennec.LogLevel.INFO)
        model = fennec.Model.load(os.environ["FENNEC_SMOLLM2"], fennec.LoadOptions(n_threads=1))
        fennec.Session(model, fennec.SessionOptions(n_ctx=64))
        fennec.set_log_listener(None, fennec.LogLevel.TRACE)
        count = len(records.records)
        fennec.Session(model, fennec.SessionOptions(n_ctx=64))  # not recorded
        self.assertEqual(len(records.records), count)
        self.assertTrue(records.records, "no log record arrived")
        self.assertTrue(all(level in (fennec.LogLevel.ERROR, fennec.LogLevel.WARN, fennec.LogLevel.INFO)
                            for level, _, _ in records.records), records.records)
        self.assertTrue(any(t.startswith("fennec_core") for _, t, _ in records.records), records.records)


class Overhead(unittest.TestCase):
    def test_report_the_cost_of_one_piece_callback(self):
        class Count(fennec.PieceListener):
            n = 0

            def on_piece(self, piece):
                self.n += 1
                return True

        listener = Count()
        ns = fennec.measure_listener_ns(listener, 20000)
        self.assertEqual(listener.n, 20000)
        print(f"\n[python] one piece callback: {ns:.0f} ns")


class Vision(unittest.TestCase):
    def test_an_image_message_answers_as_transformers(self):
        d = os.environ["FENNEC_VISION_DIR"]
        with open(os.path.join(d, "goldens", "one_tile.json")) as f:
            golden = json.load(f)
        model = fennec.Model.load(
            os.path.join(d, "models", "tiny.f32.gguf"),
            fennec.LoadOptions(n_threads=2, mmproj_path=os.path.join(d, "models", "mmproj-tiny.f32.gguf")),
        )
        self.assertTrue(model.info().has_vision)
        with open(os.path.join(d, "images", "one_tile.png"), "rb") as f:
            image = fennec.Image.from_encoded(f.read())
        question = golden["messages"][0]["content"][1]["text"]
        session = fennec.Session(model, fennec.SessionOptions(n_ctx=1024))
        messages = [fennec.ChatMessage(role="user", text=question, images=[image])]
        done = session.chat(messages, greedy(16))
        self.assertEqual(done.tokens, golden["greedy"]["tokens"])
        self.assertGreater(done.stats.image_seconds, 0)
        # The same conversation again: the image comes from the cache and the prefix is kept.
        again = fennec.Session(model, fennec.SessionOptions(n_ctx=1024)).chat(messages, greedy(16))
        self.assertEqual(again.tokens, done.tokens)
        self.assertEqual(again.stats.image_seconds, 0)
        with self.assertRaises((fennec.FennecError.InvalidImage, fennec.FennecError.InvalidArgument)):
            fennec.Image.from_encoded(b"\x89PNG\r\n\x1a\n truncated")


if __name__ == "__main__":
    unittest.main(verbosity=2)
