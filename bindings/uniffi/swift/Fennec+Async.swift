// Swift concurrency over the generated bindings: generation as an AsyncThrowingStream.
// Ships beside the uniffi-generated Fennec.swift (same module).
import Foundation

extension Session {
    /// The reply to `messages` as a stream of pieces (see `chat(messages:options:listener:cancel:)`).
    /// Generation runs on its own thread; cancelling the consuming task, or breaking out of the
    /// `for try await` loop, cancels the generation within one token.
    public func chatStream(messages: [ChatMessage], options: GenerateOptions = GenerateOptions())
        -> AsyncThrowingStream<Piece, Error>
    {
        Self.stream { listener, cancel in
            try self.chat(messages: messages, options: options, listener: listener, cancel: cancel)
        }
    }

    /// The continuation of raw `text` as a stream of pieces (see `generate(text:options:listener:cancel:)`).
    public func generateStream(text: String, options: GenerateOptions = GenerateOptions())
        -> AsyncThrowingStream<Piece, Error>
    {
        Self.stream { listener, cancel in
            try self.generate(text: text, options: options, listener: listener, cancel: cancel)
        }
    }

    private static func stream(
        _ run: @escaping @Sendable (PieceListener, CancelToken) throws -> Completion
    ) -> AsyncThrowingStream<Piece, Error> {
        AsyncThrowingStream { continuation in
            let cancel = CancelToken()
            continuation.onTermination = { @Sendable _ in cancel.cancel() }
            let listener = StreamListener(continuation)
            Thread.detachNewThread {
                do {
                    _ = try run(listener, cancel)
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
        }
    }
}

/// Forwards pieces into a stream; tells the generation to stop once nobody listens.
private final class StreamListener: PieceListener, @unchecked Sendable {
    private let continuation: AsyncThrowingStream<Piece, Error>.Continuation

    init(_ continuation: AsyncThrowingStream<Piece, Error>.Continuation) {
        self.continuation = continuation
    }

    func onPiece(piece: Piece) -> Bool {
        if case .terminated = continuation.yield(piece) {
            return false
        }
        return true
    }
}
