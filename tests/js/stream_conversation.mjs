// One streamed conversation of two turns through the JS client
// `@langchain/langgraph-sdk`, against a Threadline server
// (tests/app/test_js_sdk.py runs it).
//
//   THREADLINE_API_KEY=tl_... node stream_conversation.mjs URL [QUESTION...]
//   THREADLINE_TOKEN=...      node stream_conversation.mjs URL [QUESTION...]
//
// Credentials come from the environment, never argv (argv shows in `ps`). It
// prints one JSON object: what each turn's stream carried, and the thread's
// state afterwards. Any error, an SSE `error` event included, exits 1.

import { Client } from "@langchain/langgraph-sdk";

const DEFAULT_QUESTIONS = ["my name is Ada Lovelace", "what is my name?"];
const STREAM_MODE = ["values", "messages-tuple", "updates"];

function clientFor(apiUrl) {
  const apiKey = process.env.THREADLINE_API_KEY;
  const token = process.env.THREADLINE_TOKEN;
  if (apiKey) return new Client({ apiUrl, apiKey });
  if (token) {
    // apiKey null: the SDK would otherwise add LANGGRAPH_API_KEY & co. from the env.
    const defaultHeaders = { Authorization: `Bearer ${token}` };
    return new Client({ apiUrl, apiKey: null, defaultHeaders });
  }
  throw new Error("set THREADLINE_API_KEY or THREADLINE_TOKEN");
}

// A message's content is a string or a list of content blocks.
function textOf(content) {
  if (typeof content === "string") return content;
  return content.map((block) => (typeof block === "string" ? block : block.text ?? "")).join("");
}

function brief(message) {
  return { type: message.type, id: message.id, content: textOf(message.content) };
}

async function streamTurn(client, threadId, question) {
  const turn = {
    question,
    created: null, // the run as the response's Content-Location names it
    events: [],
    metadata_run_ids: [],
    chunk_run_ids: [],
    chunk_ids: [],
    answer: "", // the AIMessageChunks' content, in order
    journaled: [], // the complete messages the stream sent after the chunks
    updates: [], // node names, one per `updates` event
    values: null, // the last `values` event's messages
  };
  const stream = client.runs.stream(threadId, "threadline", {
    input: { messages: [{ type: "human", content: question }] },
    streamMode: STREAM_MODE,
    onRunCreated: (run) => {
      turn.created = run;
    },
  });
  for await (const { event, data } of stream) {
    turn.events.push(event);
    if (event === "error") throw new Error(`error event: ${JSON.stringify(data)}`);
    if (event === "metadata") turn.metadata_run_ids.push(data.run_id);
    if (event === "updates") turn.updates.push(...Object.keys(data));
    if (event === "values") turn.values = data.messages.map(brief);
    if (event === "messages") {
      const [message, metadata] = data;
      if (message.type === "AIMessageChunk") {
        turn.answer += textOf(message.content);
        turn.chunk_run_ids.push(metadata.run_id);
        turn.chunk_ids.push(message.id);
      } else {
        turn.journaled.push(brief(message));
      }
    }
  }
  return turn;
}

async function main() {
  const [apiUrl, ...asked] = process.argv.slice(2);
  if (!apiUrl) throw new Error("usage: node stream_conversation.mjs URL [QUESTION...]");
  const client = clientFor(apiUrl);
  const thread = await client.threads.create({ metadata: { title: "From the JS SDK" } });
  const turns = [];
  for (const question of asked.length ? asked : DEFAULT_QUESTIONS) {
    turns.push(await streamTurn(client, thread.thread_id, question));
  }
  const state = await client.threads.getState(thread.thread_id);
  const result = {
    thread_id: thread.thread_id,
    turns,
    state: { checkpoint: state.checkpoint, messages: state.values.messages.map(brief) },
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

try {
  await main();
} catch (error) {
  console.error(error?.stack ?? error);
  process.exitCode = 1;
}
