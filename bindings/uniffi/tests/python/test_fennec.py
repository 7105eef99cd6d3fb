"""The generated Python module on real models: greedy equality with the Rust path,
streaming, cancellation, save/restore, typed errors, threads, images.

Run by bindings/uniffi/test.sh, which generates `fennec.py` beside the cdylib, puts it on
PYTHONPATH and sets:
  FENNEC_SMOLLM2         path of SmolLM2-135M-Instruct.Q4_1.gguf
  FENNEC_EXPECTED        JSON of `fennec run --chat --json` for PROMPT (the Rust result)
  FENNEC_VISION_DIR      tests/fixtures/llama4_vision
  FENNEC_WHISPER         path of whisper-tiny.en-f16.gguf
  FENNEC_WHISPER_DIR     tests/fixtures/whisper (clips/*.wav, goldens/transcripts.json:
                         faster-whisper's transcripts)
"""

import array
import gc
import json
import os
import tempfile
import threading
import unittest
import wave

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


def read_wav_i16(name):
    """The 16-bit samples, rate and channels of a clip (read with Python's wave module)."""
    with wave.open(os.path.join(os.environ["FENNEC_WHISPER_DIR"], "clips", name)) as w:
        assert w.getsampwidth() == 2, name
        samples = array.array("h", w.readframes(w.getnframes()))
        return list(samples), w.getframerate(), w.getnchannels()


def golden_text(name):
    with open(os.path.join(os.environ["FENNEC_WHISPER_DIR"], "goldens", "transcripts.json")) as f:
        return json.load(f)["clips/" + name]["faster_whisper"]


def words(text):
    return [w.strip(".,?!").lower() for w in text.split()]


class Speech(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.whisper = fennec.WhisperModel.load(os.environ["FENNEC_WHISPER"], fennec.LoadOptions(n_threads=2))

    def test_transcribe_samples_and_file_give_faster_whispers_text(self):
        samples, rate, channels = read_wav_i16("speech_us.wav")
        self.assertEqual((rate, channels), (16000, 1))
        golden = golden_text("speech_us.wav")
        t = self.whisper.transcribe([s / 32768.0 for s in samples], rate)
        self.assertEqual(t.text, golden["text"])
        self.assertEqual(t.tokens, golden["tokens"])
        self.assertLess(t.no_speech_prob, 0.6)
        self.assertFalse(t.skipped_as_no_speech)
        self.assertEqual(len(t.segments), 1)
        self.assertAlmostEqual(t.audio_seconds, len(samples) / 16000.0, places=6)
        self.assertGreater(t.encode_seconds, 0)
        self.assertGreater(t.decode_seconds, 0)
        from_file = self.whisper.transcribe_file(
            os.path.join(os.environ["FENNEC_WHISPER_DIR"], "clips", "speech_us.wav"))
        self.assertEqual(from_file.text, golden["text"])

    def test_noise_is_no_speech(self):
        samples, rate, _ = read_wav_i16("noise_only.wav")
        t = self.whisper.transcribe([s / 32768.0 for s in samples], rate)
        self.assertEqual(golden_text("noise_only.wav")["text"], "")
        self.assertEqual(t.text, "")
        self.assertTrue(t.skipped_as_no_speech)

    def test_two_sentences_pushed_in_10_ms_chunks_are_two_utterances(self):
        samples, rate, channels = read_wav_i16("two_sentences.wav")
        stt = fennec.SpeechToText(self.whisper, fennec.VadConfig())
        heard = []
        chunk = rate // 100 * channels
        speaking = False
        for i in range(0, len(samples), chunk):
            heard += stt.push_pcm_i16(samples[i:i + chunk], rate, channels)
            speaking |= stt.in_speech()
        self.assertTrue(speaking)
        heard += stt.finish()
        self.assertEqual(len(heard), 2, heard)
        self.assertLess(heard[0].end_s, heard[1].start_s)
        # The clip: "Turn off the lights.", 1.5 s of silence, "What will the weather be like
        # tomorrow morning?". A sentence cut alone is not the clip the golden transcribes:
        # allow one word to differ.
        for h, sentence in zip(heard, ["Turn off the lights.", "What will the weather be like tomorrow morning?"]):
            got, want = words(h.text), words(sentence)
            self.assertEqual(len(got), len(want), h.text)
            self.assertLessEqual(sum(a != b for a, b in zip(got, want)), 1, h.text)
            self.assertTrue(h.tokens)
            self.assertGreater(h.transcribe_seconds, 0)
        # The same audio as floats, after a reset: the same utterances.
        stt.reset()
        floats = [s / 32768.0 for s in samples]
        again = stt.push_pcm_f32(floats, rate, channels) + stt.finish()
        self.assertEqual([h.text for h in again], [h.text for h in heard])

    def test_cancel_through_a_token_and_the_streams_token(self):
        samples, rate, _ = read_wav_i16("speech_us.wav")
        floats = [s / 32768.0 for s in samples]
        cancel = fennec.CancelToken()
        cancel.cancel()
        with self.assertRaises(fennec.FennecError.Cancelled):
            self.whisper.transcribe(floats, rate, None, cancel)
        stt = fennec.SpeechToText(self.whisper, fennec.VadConfig())
        stt.push_pcm_f32(floats, rate, 1)
        stt.cancel_token().cancel()
        with self.assertRaises(fennec.FennecError.Cancelled):
            stt.finish()
        # The stream goes on: the next utterance (as 16-bit little-endian bytes) is transcribed.
        heard = stt.push_pcm_i16_le(array.array("h", samples).tobytes(), rate, 1) + stt.finish()
        self.assertEqual(len(heard), 1)
        self.assertEqual(words(heard[0].text), words(golden_text("speech_us.wav")["text"]))

    def test_bad_input_raises_the_right_kind(self):
        with self.assertRaises(fennec.FennecError.Io):
            fennec.WhisperModel.load("/nonexistent/whisper.gguf", fennec.LoadOptions())
        with self.assertRaises(fennec.FennecError.Unsupported):  # a llama, not a whisper
            fennec.WhisperModel.load(os.environ["FENNEC_SMOLLM2"], fennec.LoadOptions())
        with self.assertRaises(fennec.FennecError.InvalidArgument):
            self.whisper.transcribe([], 16000)
        with self.assertRaises(fennec.FennecError.InvalidArgument):
            self.whisper.transcribe([float("nan")] * 1600, 16000)
        with self.assertRaises(fennec.FennecError.InvalidArgument):
            self.whisper.transcribe([0.0] * 100, 0)
        with self.assertRaises(fennec.FennecError.InvalidArgument):
            self.whisper.transcribe([0.0] * 16000 * 3, 16000, fennec.TranscribeOptions(max_audio_s=1.0))
        with self.assertRaises(fennec.FennecError.Io):
            self.whisper.transcribe_file("/nonexistent/clip.wav")
        with tempfile.NamedTemporaryFile(suffix=".wav") as f:
            f.write(b"RIFF\x10\x00\x00\x00WAVEjunk")
            f.flush()
            with self.assertRaises(fennec.FennecError.InvalidArgument):
                self.whisper.transcribe_file(f.name)
        with self.assertRaises(fennec.FennecError.InvalidArgument):
            fennec.SpeechToText(self.whisper, fennec.VadConfig(threshold=0.0))
        stt = fennec.SpeechToText(self.whisper, fennec.VadConfig())
        with self.assertRaises(fennec.FennecError.InvalidArgument):
            stt.push_pcm_i16([0, 0, 0], 16000, 2)  # not whole stereo frames
        with self.assertRaises(fennec.FennecError.InvalidArgument):
            stt.push_pcm_i16([0] * 10, 0, 1)
        with self.assertRaises(fennec.FennecError.InvalidArgument):
            stt.push_pcm_f32([0.0] * 10, 16000, 0)
        with self.assertRaises(fennec.FennecError.InvalidArgument):
            stt.push_pcm_i16_le(b"\x00\x00\x00", 16000, 1)
        self.assertEqual(stt.finish(), [])


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
