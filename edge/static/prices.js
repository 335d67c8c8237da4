// Show live quotes: list the instruments over REST, then subscribe to their prices over /v1/ws.
"use strict";

const statusLine = document.getElementById("status");
const tbody = document.querySelector("#prices tbody");
const rows = new Map();

function row(symbol) {
  let tr = rows.get(symbol);
  if (!tr) {
    tr = document.createElement("tr");
    tr.dataset.symbol = symbol;
    for (const name of ["symbol", "bid", "ask", "time"]) {
      const td = document.createElement("td");
      td.className = name;
      tr.appendChild(td);
    }
    tr.querySelector(".symbol").textContent = symbol;
    tbody.appendChild(tr);
    rows.set(symbol, tr);
  }
  return tr;
}

function show(quote) {
  const tr = row(quote.symbol);
  const bid = tr.querySelector(".bid");
  const previous = bid.textContent;
  bid.textContent = quote.bid;
  tr.querySelector(".ask").textContent = quote.ask;
  tr.querySelector(".time").textContent = quote.time || "";
  // Compare as decimal strings' numeric value only for the colour cue; prices stay strings.
  tr.className = previous && previous !== quote.bid ? (Number(quote.bid) > Number(previous) ? "up" : "down") : "";
}

async function symbols() {
  const response = await fetch("/v1/instruments");
  if (!response.ok) throw new Error(`instruments: HTTP ${response.status}`);
  const body = await response.json();
  return (body.instruments || []).map((i) => i.symbol);
}

function connect(list, attempt) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/v1/ws`);
  socket.onopen = () => {
    statusLine.textContent = "live";
    socket.send(JSON.stringify({ op: "subscribe", channel: "prices", symbols: list }));
  };
  socket.onmessage = (message) => {
    const frame = JSON.parse(message.data);
    if (frame.channel === "prices") show(frame.data);
    else if (frame.type === "error") statusLine.textContent = `error: ${frame.error.message}`;
  };
  socket.onclose = () => {
    statusLine.textContent = "disconnected; reconnecting…";
    setTimeout(() => connect(list, attempt + 1), Math.min(5000, 250 * 2 ** attempt));
  };
}

symbols()
  .then((list) => {
    for (const symbol of list) row(symbol);
    connect(list, 0);
  })
  .catch((error) => {
    statusLine.textContent = `cannot load instruments: ${error.message}`;
  });
