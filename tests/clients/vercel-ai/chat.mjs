// Drives the Vercel AI SDK (`ai` + `@ai-sdk/openai`, versions pinned in package-lock.json) against
// a Riposte server, the way an application would: generateText turns that re-send
// `response.messages`. Usage: node chat.mjs <baseURL> <modelId> <store:true|false> <turns>
// Prints one JSON line per turn: the text, and the request body the SDK sent.
import { generateText } from "ai";
import { createOpenAI } from "@ai-sdk/openai";

const [baseURL, modelId, storeArg, turnsArg] = process.argv.slice(2);
const store = storeArg === "true";
const sent = [];
const openai = createOpenAI({
  baseURL,
  apiKey: "not-a-real-key",
  fetch: async (url, init) => {
    sent.push(JSON.parse(init.body));
    return fetch(url, init);
  },
});

const messages = [];
for (let turn = 1; turn <= Number(turnsArg); turn++) {
  messages.push({ role: "user", content: `Question ${turn}?` });
  const result = await generateText({
    model: openai.responses(modelId),
    messages,
    providerOptions: store ? {} : { openai: { store: false } },
    maxRetries: 0,
  });
  messages.push(...result.response.messages);
  console.log(JSON.stringify({ turn, text: result.text, request: sent.at(-1) }));
}
