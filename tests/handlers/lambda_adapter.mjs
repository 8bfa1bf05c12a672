#!/usr/bin/env node
// Serves a Lambda-style Node.js handler as an sma webhook, its code untouched.
//
// A handler written for the hosted service exports `handler(event, context[, callback])`:
// an async function returning the response, or one that calls back with it. This adapter
// reads the event JSON from the request body, calls the handler, and writes what it gave as
// JSON (`undefined` becomes `null`). Every exchange is appended to `--events` as a JSON line
// `{"event": ..., "response": ...}`.
//
//   node lambda_adapter.mjs --handler index.js [--function handler] [--port 0] [--events FILE]
//
// It prints `listening on http://127.0.0.1:<port>/` once it accepts requests.

import { appendFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { randomUUID } from "node:crypto";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => {
    if (arg.startsWith("--")) pairs.push([arg.slice(2), all[i + 1]]);
    return pairs;
  }, []),
);
const require = createRequire(import.meta.url);
const module = require(resolve(args.handler));
const handler = module[args.function ?? "handler"];

function invoke(event) {
  const context = {
    functionName: args.function ?? "handler",
    awsRequestId: randomUUID(),
    getRemainingTimeInMillis: () => 20000,
  };
  return new Promise((resolveResult, reject) => {
    const callback = (error, result) => (error ? reject(error) : resolveResult(result));
    const returned = handler(event, context, callback);
    if (returned && typeof returned.then === "function") returned.then(resolveResult, reject);
    else if (handler.length < 3) resolveResult(returned);
  });
}

const server = createServer((request, response) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", async () => {
    const event = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    let status = 200;
    let result;
    let body;
    try {
      result = await invoke(event);
      body = JSON.stringify(result === undefined ? null : result);
    } catch (error) {
      status = 502;
      result = { error: String(error) };
      body = JSON.stringify({ errorMessage: String(error) });
    }
    if (args.events) {
      appendFileSync(args.events, JSON.stringify({ event, response: result ?? null }) + "\n");
    }
    response.writeHead(status, { "Content-Type": "application/json" });
    response.end(body);
  });
});

server.listen(Number(args.port ?? 0), args.host ?? "127.0.0.1", () => {
  const { address, port } = server.address();
  console.log(`listening on http://${address}:${port}/`);
});
