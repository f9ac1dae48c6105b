// Drives the official openai Node SDK (version pinned in package-lock.json) against a Riposte
// server, one scenario per run: node run.mjs <baseURL> <scenario>. Prints one JSON object with
// what the scenario saw. The SDK's `responses.stream()` accumulates the events into a response
// and throws on any it cannot place (an unknown output index, a delta before its part, a
// terminal event with unfinished items), so a stream that gets through is well formed.
import OpenAI from "openai";
import { zodTextFormat } from "openai/helpers/zod";
import { z } from "zod";

const [baseURL, scenario] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "not-a-real-key", maxRetries: 0 });
const model = "gpt-4o";

const weatherTool = {
  type: "function",
  name: "get_weather",
  description: "The weather in a city.",
  parameters: {
    type: "object",
    properties: { city: { type: "string" } },
    required: ["city"],
    additionalProperties: false,
  },
  strict: true,
};

// Every event of a stream, checked for what the accumulator does not check: sequence numbers
// from 0 without gaps, and a single terminal event at the end.
async function streamed(params) {
  const stream = client.responses.stream(params);
  const types = [];
  const sequence = [];
  let deltas = "";
  for await (const event of stream) {
    types.push(event.type);
    sequence.push(event.sequence_number);
    if (event.type === "response.output_text.delta") deltas += event.delta;
  }
  const response = await stream.finalResponse();
  const inOrder = sequence.every((number, index) => number === index);
  return { types, inOrder, deltas, response };
}

const scenarios = {
  async basic() {
    const created = await client.responses.create({ model, input: "Name a planet with rings." });
    const retrieved = await client.responses.retrieve(created.id);
    const items = [];
    for await (const item of client.responses.inputItems.list(created.id)) items.push(item);
    return {
      text: created.output_text,
      usage: created.usage,
      status: retrieved.status,
      sameOutput: JSON.stringify(retrieved.output) === JSON.stringify(created.output),
      inputItems: items.map((item) => [item.type, item.role]),
    };
  },

  async stream() {
    const { types, inOrder, deltas, response } = await streamed({ model, input: "Count to 3." });
    return { types, inOrder, deltas, text: response.output_text, status: response.status };
  },

  async tools() {
    const first = await streamed({ model, input: "Weather in Paris?", tools: [weatherTool] });
    const call = first.response.output.find((item) => item.type === "function_call");
    const second = await streamed({
      model,
      previous_response_id: first.response.id,
      input: [{ type: "function_call_output", call_id: call.call_id, output: "Sunny in Paris." }],
      tools: [weatherTool],
    });
    return {
      firstTypes: first.types,
      inOrder: first.inOrder && second.inOrder,
      call: { name: call.name, arguments: call.arguments, call_id: call.call_id, status: call.status },
      text: second.response.output_text,
    };
  },

  async parse() {
    const Forecast = z.object({ city: z.string(), sunny: z.boolean() });
    const parsed = await client.responses.parse({
      model,
      input: "Paris?",
      text: { format: zodTextFormat(Forecast, "forecast") },
    });
    const { response } = await streamed({
      model,
      input: "Paris again?",
      text: { format: zodTextFormat(Forecast, "forecast") },
    });
    return { parsed: parsed.output_parsed, streamedParsed: response.output_parsed };
  },

  async reasoning() {
    const { types, inOrder, response } = await streamed({ model: "o4-mini", input: "Six times seven?",
                                                          reasoning: { effort: "low" } });
    const reasoning = response.output.find((item) => item.type === "reasoning");
    return { types, inOrder, text: response.output_text, reasoning: reasoning.content };
  },

  async conversation() {
    const conversation = await client.conversations.create({ metadata: { topic: "planets" } });
    const first = await client.responses.create({ model, conversation: conversation.id, input: "Name a planet." });
    const second = await client.responses.create({ model, conversation: conversation.id, input: "Another one." });
    const items = [];
    for await (const item of client.conversations.items.list(conversation.id, { order: "asc" })) items.push(item);
    return {
      texts: [first.output_text, second.output_text],
      conversation: second.conversation,
      items: items.map((item) => [item.type, item.role]),
    };
  },

  async errors() {
    try {
      await client.responses.create({ model, input: "Hi", temperature: 7 });
      return { raised: false };
    } catch (error) {
      return { raised: true, status: error.status, param: error.param, type: error.type };
    }
  },
};

console.log(JSON.stringify(await scenarios[scenario]()));
