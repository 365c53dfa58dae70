/**
 * Server-sent events read from a byte stream (the text/event-stream format: `field: value` lines, a
 * blank line ends a message, lines starting with `:` are comments). Only what the job event stream
 * uses: `id`, `event`, `data` (several data lines joined by newlines).
 */
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

export interface SseMessage {
  readonly id: string | undefined;
  readonly event: string | undefined;
  readonly data: string;
}

export async function* readSse(stream: Readable): AsyncGenerator<SseMessage> {
  let id: string | undefined;
  let event: string | undefined;
  let data: string[] = [];
  for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
    if (line === '') {
      if (data.length > 0) yield { id, event, data: data.join('\n') };
      event = undefined;
      data = [];
      continue;
    }
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'data') data.push(value);
    else if (field === 'event') event = value;
    else if (field === 'id') id = value;
  }
}
