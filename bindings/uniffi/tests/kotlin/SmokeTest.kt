// The generated Kotlin bindings on the JVM (JNA) with SmolLM2: greedy equality with the Rust
// path, streaming, cancellation (token and coroutine), save/restore, typed errors, threads.
// Run by bindings/uniffi/test.sh: `java … SmokeTestKt MODEL EXPECTED_TOKENS_CSV`.
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

    println(if (failures == 0) "all Kotlin checks passed" else "$failures Kotlin check(s) failed")
    kotlin.system.exitProcess(if (failures == 0) 0 else 1)
}
