// Server-sent events over fetch(): EventSource cannot POST a body or send the key header.

/**
 * Feeds text chunks in, gets whole events out. A chunk may end anywhere (mid-line, mid-character is
 * handled by the TextDecoder upstream), so a partial line waits in `buffer` until its newline arrives.
 */
export class SseParser {
  constructor() {
    this.buffer = "";
    this.data = [];
  }

  /** The `data` payloads of every event completed by this chunk. */
  push(chunk) {
    this.buffer += chunk;
    // A "\r" at the very end may be the first half of "\r\n": it stays in the buffer until the next chunk.
    const lines = this.buffer.split(/\r\n|\n|\r(?!$)/);
    this.buffer = lines.pop(); // the last piece has no newline yet
    const events = [];
    for (const line of lines) {
      if (line === "") {
        if (this.data.length) events.push(this.data.join("\n"));
        this.data = [];
      } else if (line.startsWith("data:")) {
        this.data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
      } // comments (":") and other fields (event:, id:, retry:) are not used by our stream
    }
    return events;
  }
}

/**
 * Calls onEvent(parsed JSON) for each event of a streamed Response until `[DONE]` or the end of the body.
 * An event cut off by the end of the body (no blank line after it) is dropped, as the SSE standard says.
 */
export async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new SseParser();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    for (const payload of parser.push(value)) {
      if (payload === "[DONE]") return;
      onEvent(parse(payload));
    }
  }
}

function parse(payload) {
  try {
    return JSON.parse(payload);
  } catch {
    throw new Error("the server sent an event that is not JSON");
  }
}
