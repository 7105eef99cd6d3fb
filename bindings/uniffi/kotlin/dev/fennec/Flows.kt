// Kotlin coroutines over the generated bindings: generation as a cold Flow of pieces.
// Ships beside the uniffi-generated fennec.kt (same package); needs kotlinx-coroutines-core.
package dev.fennec

import kotlin.concurrent.thread
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.channels.trySendBlocking
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.flow.callbackFlow

/**
 * The reply to [messages] as a cold [Flow] of pieces (see [Session.chat]). Generation runs on
 * its own thread when collection starts; cancelling the collecting coroutine (or taking only
 * the first pieces) cancels the generation within one token. Errors are thrown to the collector.
 */
fun Session.chatFlow(messages: List<ChatMessage>, options: GenerateOptions = GenerateOptions()): Flow<Piece> =
    generationFlow { listener, cancel -> chat(messages, options, listener, cancel) }

/** The continuation of raw [text] as a cold [Flow] of pieces (see [Session.generate]). */
fun Session.generateFlow(text: String, options: GenerateOptions = GenerateOptions()): Flow<Piece> =
    generationFlow { listener, cancel -> generate(text, options, listener, cancel) }

private fun generationFlow(run: (PieceListener, CancelToken) -> Completion): Flow<Piece> =
    callbackFlow {
        val cancel = CancelToken()
        val listener = object : PieceListener {
            // Blocks the generating thread while the collector is behind (backpressure);
            // a closed channel (collector gone) stops generation.
            override fun onPiece(piece: Piece): Boolean = trySendBlocking(piece).isSuccess
        }
        thread(name = "fennec-generate", isDaemon = true) {
            try {
                run(listener, cancel)
                channel.close()
            } catch (e: Throwable) {
                channel.close(e)
            }
        }
        awaitClose { cancel.cancel() }
    }.buffer(Channel.UNLIMITED)
