// Render /openapi.json as a browsable, try-it-out page; no external scripts, works offline.
"use strict";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function refName(schema) {
  return schema && schema.$ref ? schema.$ref.split("/").pop() : null;
}

function typeText(schema) {
  if (!schema) return "";
  const ref = refName(schema);
  if (ref) return ref;
  if (schema.type === "array") return `${typeText(schema.items)}[]`;
  if (schema.enum) return schema.enum.join(" | ");
  return schema.format ? `${schema.type} (${schema.format})` : schema.type || "any";
}

function example(schema, spec, depth) {
  const ref = refName(schema);
  if (ref) return depth > 2 ? {} : example(spec.components.schemas[ref], spec, depth + 1);
  if (!schema) return null;
  if (schema.type === "object") {
    const out = {};
    for (const [name, field] of Object.entries(schema.properties || {})) {
      if (field.type === "array" || refName(field)) continue;
      out[name] = example(field, spec, depth + 1);
    }
    return out;
  }
  if (schema.enum) return schema.enum[1] || schema.enum[0];
  if (schema.type === "integer") return 0;
  if (schema.type === "boolean") return false;
  if (schema.format === "date-time") return new Date().toISOString();
  return "";
}

function operationView(path, verb, op, spec) {
  const summary = el("summary", {}, el("span", { class: `verb ${verb}` }, verb.toUpperCase()), path,
    " — ", op.summary || "");
  const body = el("div", { class: "body" });
  body.append(el("pre", {}, op.description || ""));
  const inputs = new Map();
  for (const parameter of op.parameters || []) {
    const input = el("input", { type: "text", placeholder: typeText(parameter.schema) });
    inputs.set(parameter, input);
    body.append(el("label", {}, `${parameter.name} (${parameter.in}${parameter.required ? ", required" : ""})`, input));
  }
  let bodyInput = null;
  if (op.requestBody) {
    const schema = op.requestBody.content["application/json"].schema;
    bodyInput = el("textarea", { rows: "6" });
    bodyInput.value = JSON.stringify(example(schema, spec, 0), null, 2);
    body.append(el("label", {}, "JSON body", bodyInput));
  }
  const output = el("pre", {}, "");
  const button = el("button", { type: "button" }, op["x-streaming"] ? "Open stream" : "Send");
  button.addEventListener("click", async () => {
    let url = path;
    const query = new URLSearchParams();
    for (const [parameter, input] of inputs) {
      if (!input.value) continue;
      if (parameter.in === "path") url = url.replace(`{${parameter.name}}`, encodeURIComponent(input.value));
      else for (const value of input.value.split(",")) query.append(parameter.name, value.trim());
    }
    if ([...query].length) url += `?${query}`;
    const headers = { "content-type": "application/json" };
    const token = document.getElementById("token").value.trim();
    if (token) headers.authorization = `Bearer ${token}`;
    output.textContent = "…";
    try {
      const response = await fetch(url, { method: verb.toUpperCase(), headers, body: bodyInput ? bodyInput.value : undefined });
      output.textContent = `HTTP ${response.status}\n`;
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        output.textContent += decoder.decode(value, { stream: true });
      }
    } catch (error) {
      output.textContent = `request failed: ${error.message}`;
    }
  });
  body.append(button, output);
  return el("details", { class: "op" }, summary, body);
}

function schemaView(name, schema) {
  const rows = Object.entries(schema.properties || {}).map(([field, s]) =>
    `${field}: ${typeText(s)}${s.description ? `  // ${s.description.replace(/\n/g, " ")}` : ""}`);
  return el("details", { class: "op" }, el("summary", {}, name),
    el("div", { class: "body" }, el("pre", {}, `${schema.description || ""}\n\n${rows.join("\n")}`)));
}

async function main() {
  const spec = await (await fetch("/openapi.json")).json();
  document.getElementById("intro").textContent = spec.info.description;
  const byTag = new Map();
  for (const [path, verbs] of Object.entries(spec.paths)) {
    for (const [verb, op] of Object.entries(verbs)) {
      const tag = (op.tags || ["Other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operationView(path, verb, op, spec));
    }
  }
  const operations = document.getElementById("operations");
  for (const [tag, views] of byTag) operations.append(el("h2", { class: "tag" }, tag), ...views);
  const schemas = document.getElementById("schemas");
  for (const [name, schema] of Object.entries(spec.components.schemas)) schemas.append(schemaView(name, schema));
}

main().catch((error) => {
  document.getElementById("intro").textContent = `cannot load the API description: ${error.message}`;
});
