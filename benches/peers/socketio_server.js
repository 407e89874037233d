// The Socket.io peer of benches/ws.sh (issue 5): a minimal broadcast server, the technology of
// the system AgentHQ replaces. Clients connect over a plain WebSocket and join the room of the
// tenant named in the handshake query; `POST /publish` with
// `{"events":[{"tenant":"<slug>","data":{…}}, …]}` emits each event to its tenant's room, as
// AgentHQ's `POST /api/admin/realtime/test-events` does.
//
//   node benches/peers/socketio_server.js 127.0.0.1 PORT
"use strict";

const http = require("http");
const { Server } = require("socket.io");

const host = process.argv[2] || "127.0.0.1";
const port = Number(process.argv[3] || 3000);

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/healthz") {
    res.writeHead(200).end();
    return;
  }
  if (req.method !== "POST" || req.url !== "/publish") {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch (e) {
      res.writeHead(400).end();
      return;
    }
    for (const e of body.events) {
      io.to(e.tenant).emit("event", e.data);
    }
    res.writeHead(202, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ published: body.events.length }));
  });
});

const io = new Server(server, {
  transports: ["websocket"],
  serveClient: false,
  // Per-message deflate is off by default in Socket.io 4; said here so nobody wonders.
  perMessageDeflate: false,
});

io.on("connection", (socket) => {
  const tenant = socket.handshake.query.tenant;
  if (typeof tenant === "string" && tenant) {
    socket.join(tenant);
  }
});

server.listen(port, host, () => {
  console.log(`socket.io ${require("socket.io/package.json").version} on ${host}:${port}`);
});

process.on("SIGTERM", () => process.exit(0));
