// The generated Kotlin bindings on the JVM (JNA) with SmolLM2: greedy equality with the Rust
// path, streaming, cancellation (token and coroutine), save/restore, typed errors, threads.
// Speech to text with Whisper: transcription against faster-whisper's text, a pushed-PCM stream,
// typed errors.
// Run by bindings/uniffi/test.sh:
// `java … SmokeTestKt MODEL EXPECTED_TOKENS_CSV WHISPER CLIPS_DIR SPEECH_US_GOLDEN_TEXT`.
import dev.fennec.*
import java.io.File
import kotlin.concurrent.thread
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout

var failures = 0

fun check(ok: Boolean, what: String) {
    if (ok) println("ok   $what") else { println("FAIL $what"); failures++ }
}

inline fun <reified E : Throwable> throws(what: String, block: () -> Unit) {
    try {
        block()
        check(false, "$what: nothing thrown")
    } catch (e: Throwable) {
        check(e is E, "$what: ${e::class.simpleName}: ${e.message}")
    }
}

fun main(args: Array<String>) {
    val modelPath = args[0]
    val expected = args[1].split(",").map { it.trim().toUInt() }
    val prompt = listOf(ChatMessage("user", "What is the capital of France?"))
    val greedy = GenerateOptions(maxTokens = 24u)
    val model = Model.load(modelPath, LoadOptions(nThreads = 2u))

    // Greedy chat equals the Rust result, streamed through a listener.
    val session = Session(model, SessionOptions(nCtx = 1024u))
    val pieces = StringBuilder()
    val done = session.chat(prompt, greedy, object : PieceListener {
        override fun onPiece(piece: Piece): Boolean { pieces.append(piece.text); return true }
    })
    check(done.tokens == expected, "greedy tokens equal Rust's: ${done.tokens}")
    check(pieces.toString() == done.text, "streamed text equals the completion")

    // The Flow: collecting it whole gives the same text; taking 3 pieces cancels generation.
    runBlocking {
        val all = Session(model, SessionOptions(nCtx = 1024u)).chatFlow(prompt, greedy).toList()
        check(all.joinToString("") { it.text } == done.text, "chatFlow streams the same text")
        val s = Session(model, SessionOptions(nCtx = 1024u))
        val first = withTimeout(60_000) { s.chatFlow(prompt, GenerateOptions(maxTokens = 0u)).take(3).toList() }
        check(first.size == 3, "take(3) collects three pieces")
        // The generation thread stops within a token of the cancel; the session is free again.
        val next = s.generate(" Paris", GenerateOptions(maxTokens = 2u))
        check(s.nPast() < 37u + 40u, "cancelled generation stopped early (n_past ${s.nPast()})")
        check(next.tokens.size == 2, "the session works after a cancelled flow")
    }

    // Cancel token from the listener.
    val cancel = CancelToken()
    var count = 0
    val cancelled = Session(model, SessionOptions(nCtx = 1024u)).chat(prompt, greedy, object : PieceListener {
        override fun onPiece(piece: Piece): Boolean { if (++count == 3) cancel.cancel(); return true }
    }, cancel)
    check(cancelled.stopReason == StopReason.CANCELLED && cancelled.tokens.size == 3, "cancel token stops after 3 tokens")

    // Save and restore continue like the original.
    val file = File.createTempFile("fennec", ".fnss")
    session.save(file.path)
    val restored = Session.restore(model, file.path)
    val fromBytes = Session.fromBytes(model, session.toBytes())
    file.delete()
    val a = session.generate(" Tell me more.", GenerateOptions(maxTokens = 8u)).tokens
    check(restored.generate(" Tell me more.", GenerateOptions(maxTokens = 8u)).tokens == a, "restored session continues alike")
    check(fromBytes.generate(" Tell me more.", GenerateOptions(maxTokens = 8u)).tokens == a, "session from bytes continues alike")

    // Typed errors.
    throws<FennecException.Io>("bad model path") { Model.load("/nonexistent/model.gguf", LoadOptions()) }
    val bad = File.createTempFile("bad", ".gguf")
    bad.writeBytes(byteArrayOf(0x47, 0x47, 0x55, 0x46, 3, 0, 0, 0) + ByteArray(40) { -1 })
    throws<FennecException.InvalidGguf>("malformed GGUF") { Model.load(bad.path, LoadOptions()) }
    bad.delete()
    throws<FennecException.ContextFull>("prompt longer than the context") {
        Session(model, SessionOptions(nCtx = 8u)).generate("word ".repeat(50), GenerateOptions(maxTokens = 4u))
    }

    // Two sessions on two threads; the model object closed while they hold it.
    val shared = Model.load(modelPath, LoadOptions(nThreads = 2u))
    val sessions = List(2) { Session(shared, SessionOptions(nCtx = 256u)) }
    shared.close()
    val results = arrayOfNulls<List<UInt>>(2)
    val threads = List(2) { i -> thread { results[i] = sessions[i].chat(prompt, greedy).tokens } }
    threads.forEach { it.join(120_000) }
    check(results.all { it == expected }, "two threads, two sessions, model closed early: ${results.toList()}")

    // Cost of streaming: one listener call per token (reported, not asserted).
    var calls = 0
    val counter = object : PieceListener { override fun onPiece(piece: Piece): Boolean { calls++; return true } }
    measureListenerNs(counter, 20_000u)
    val ns = measureListenerNs(counter, 100_000u)
    check(calls == 120_000, "the listener was called for every piece")
    println("[kotlin] one piece callback: ${"%.0f".format(ns)} ns")

    speechChecks(args[2], args[3], args[4])

    println(if (failures == 0) "all Kotlin checks passed" else "$failures Kotlin check(s) failed")
    kotlin.system.exitProcess(if (failures == 0) 0 else 1)
}


/** The samples, rate and channels of a 16-bit PCM WAV file. */
fun readWavI16(file: File): Triple<ShortArray, Int, Int> {
    val b = java.nio.ByteBuffer.wrap(file.readBytes()).order(java.nio.ByteOrder.LITTLE_ENDIAN)
    var pos = 12
    var rate = 0
    var channels = 0
    while (pos + 8 <= b.limit()) {
        val id = String(ByteArray(4) { b.get(pos + it) }, Charsets.US_ASCII)
        val size = b.getInt(pos + 4)
        if (id == "fmt ") {
            require(b.getShort(pos + 8).toInt() == 1 && b.getShort(pos + 22).toInt() == 16) { "not 16-bit PCM" }
            channels = b.getShort(pos + 10).toInt()
            rate = b.getInt(pos + 12)
        } else if (id == "data") {
            val samples = ShortArray(size / 2) { b.getShort(pos + 8 + 2 * it) }
            return Triple(samples, rate, channels)
        }
        pos += 8 + size + (size and 1)
    }
    error("no data chunk in $file")
}

fun words(text: String) = text.split(" ").filter { it.isNotEmpty() }.map { it.trim('.', ',', '?', '!').lowercase() }

fun speechChecks(whisperPath: String, clipsDir: String, golden: String) {
    val whisper = WhisperModel.load(whisperPath, LoadOptions(nThreads = 2u))
    val (us, usRate, _) = readWavI16(File(clipsDir, "speech_us.wav"))
    val t = whisper.transcribe(us.map { it / 32768.0f }, usRate.toUInt())
    check(t.text == golden, "speech_us.wav transcribes to faster-whisper's text: \"${t.text}\"")
    check(t.encodeSeconds > 0.0 && t.decodeSeconds > 0.0 && !t.skippedAsNoSpeech, "transcript stages timed")
    check(whisper.transcribeFile(File(clipsDir, "speech_us.wav").path).text == golden, "transcribeFile gives the same text")

    // two_sentences.wav as AudioRecord would deliver it: 16-bit PCM in 10 ms buffers.
    val (pcm, rate, channels) = readWavI16(File(clipsDir, "two_sentences.wav"))
    val stt = SpeechToText(whisper, VadConfig())
    val heard = mutableListOf<Heard>()
    val chunk = rate / 100 * channels
    for (start in pcm.indices step chunk) {
        val end = minOf(start + chunk, pcm.size)
        heard += stt.pushPcmI16(pcm.slice(start until end), rate.toUInt(), channels.toUShort())
    }
    heard += stt.finish()
    check(heard.size == 2 && heard[0].endS < heard[1].startS, "two utterances in order: ${heard.map { it.text }}")
    val sentences = listOf("Turn off the lights.", "What will the weather be like tomorrow morning?")
    for ((h, sentence) in heard.zip(sentences)) {
        val (got, want) = words(h.text) to words(sentence)
        check(got.size == want.size && got.zip(want).count { (a, b) -> a != b } <= 1, "\"${h.text}\" is \"$sentence\"")
    }

    // Cancellation through the stream's token, then the stream goes on.
    stt.reset()
    stt.pushPcmF32(us.map { it / 32768.0f }, usRate.toUInt(), 1u)
    stt.cancelToken().cancel()
    throws<FennecException.Cancelled>("cancelled transcription") { stt.finish() }
    // Then the same clip as AudioRecord's bytes (16-bit little-endian, no boxing).
    val bytes = java.nio.ByteBuffer.allocate(us.size * 2).order(java.nio.ByteOrder.LITTLE_ENDIAN)
    us.forEach { bytes.putShort(it) }
    val again = stt.pushPcmI16Le(bytes.array(), usRate.toUInt(), 1u) + stt.finish()
    check(again.size == 1 && words(again[0].text) == words(golden), "the stream works after a cancel (bytes)")

    // Typed errors, no panic.
    throws<FennecException.Io>("missing Whisper model") { WhisperModel.load("/nonexistent/w.gguf", LoadOptions()) }
    throws<FennecException.InvalidArgument>("no samples") { whisper.transcribe(emptyList(), 16_000u) }
    throws<FennecException.InvalidArgument>("sample rate 0") { whisper.transcribe(listOf(0f, 0f), 0u) }
    throws<FennecException.InvalidArgument>("NaN samples") { whisper.transcribe(List(1600) { Float.NaN }, 16_000u) }
    throws<FennecException.InvalidArgument>("VAD threshold 0") { SpeechToText(whisper, VadConfig(threshold = 0f)) }
    throws<FennecException.InvalidArgument>("half a stereo frame") { stt.pushPcmI16(listOf<Short>(0, 0, 0), 16_000u, 2u) }
    throws<FennecException.InvalidArgument>("odd byte count") { stt.pushPcmI16Le(ByteArray(3), 16_000u, 1u) }
    throws<FennecException.InvalidArgument>("zero channels") { stt.pushPcmF32(listOf(0f), 16_000u, 0u) }
    stt.close()
    whisper.close()
}
