// trustproxy policy playground: plain script, no dependencies, talks only to this proxy.
// Values travel in POST bodies only; the client key stays in this variable (never stored).
"use strict";

(function () {
  const ENDPOINT = "/v1/trust/playground";
  let clientKey = "";
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function status(text, isError) {
    const s = $("status");
    s.textContent = text;
    s.classList.toggle("error", Boolean(isError));
  }

  async function call(body) {
    const headers = { "Content-Type": "application/json" };
    if (clientKey) headers["Authorization"] = "Bearer " + clientKey;
    let resp;
    try {
      resp = await fetch(ENDPOINT, { method: "POST", headers, body: JSON.stringify(body),
                                     credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer" });
    } catch (e) {
      throw new Error("The proxy did not answer.");
    }
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    if (!resp.ok) {
      const msg = data && data.error && data.error.message ? data.error.message : "HTTP " + resp.status;
      const err = new Error(resp.status === 401 ? msg + " Paste your client key above." : msg);
      err.status = resp.status;
      throw err;
    }
    return data;
  }

  // ---- policies ------------------------------------------------------------------------------
  async function loadPolicies() {
    const sel = $("policy");
    try {
      const data = await call({ op: "policies" });
      const previous = sel.value;
      sel.replaceChildren();
      for (const p of data.policies) {
        const label = p.name + " (" + p.version + ")" + (p.description ? " – " + p.description.slice(0, 60) : "");
        sel.append(el("option", { value: p.name }, label));
      }
      if (previous && data.policies.some((p) => p.name === previous)) sel.value = previous;
      status(data.policies.length + " policies you may try. Ready.");
      if (!$("draft").value.trim()) await loadSource();
    } catch (e) {
      sel.replaceChildren(el("option", { value: "" }, "unavailable"));
      status(e.message, true);
    }
  }

  async function loadSource() {
    const policy = $("policy").value;
    if (!policy) return;
    try {
      const data = await call({ op: "source", policy });
      $("draft").value = data.yaml;
      $("draft-out").replaceChildren(el("p", {}, "Draft started from the live " + data.policy + " (" + data.version + ")."));
    } catch (e) {
      status(e.message, true);
    }
  }

  // ---- dry run -------------------------------------------------------------------------------
  function tagText(d) {
    return d.entity_type + " · " + Number(d.score).toFixed(2) + " · " + d.action + (d.recognizer ? " · " + d.recognizer : "");
  }

  function highlighted(text, detections) {
    const frag = document.createDocumentFragment();
    const spans = detections.filter((d) => d.start !== null && d.end !== null)
      .sort((a, b) => a.start - b.start || b.end - a.end);
    let pos = 0;
    for (const d of spans) {
      if (d.start < pos) continue; // overlapping: the table lists it
      frag.append(text.slice(pos, d.start));
      const label = tagText(d);
      frag.append(el("mark", { class: "k-" + d.entity_type, title: label, "aria-label": text.slice(d.start, d.end) + " (" + label + ")" },
        text.slice(d.start, d.end), el("span", { class: "tag", "aria-hidden": "true" }, label)));
      pos = d.end;
    }
    frag.append(text.slice(pos));
    return frag;
  }

  function renderOriginal(result) {
    const box = $("original");
    box.replaceChildren();
    for (const slot of result.slots) {
      if (result.input_kind !== "text") box.append(el("span", { class: "slot-path" }, slot.path));
      box.append(el("div", {}, highlighted(slot.original, slot.detections)));
    }
    const tbody = $("detections").querySelector("tbody");
    tbody.replaceChildren();
    if (!result.detected.length) tbody.append(el("tr", {}, el("td", { colspan: "5" }, "nothing detected")));
    for (const d of result.detected) {
      const where = (d.start === null ? "a value" : d.start + "–" + d.end) + (result.input_kind === "text" ? "" : " of " + d.slot);
      tbody.append(el("tr", {}, el("td", {}, d.entity_type), el("td", {}, Number(d.score).toFixed(2)),
        el("td", {}, d.action), el("td", {}, d.recognizer || "–"), el("td", {}, where)));
    }
  }

  function renderProvider(result) {
    const box = $("provider");
    if (result.blocked) {
      box.replaceChildren(el("span", { class: "blocked" }, "Blocked by the policy (" + result.blocked_types.join(", ") + "): nothing is sent."));
    } else {
      box.replaceChildren(result.input_kind === "text" ? result.provider_text : JSON.stringify(result.provider_body, null, 2));
      if (result.refusal) {
        box.prepend(el("span", { class: "blocked" }, "Refused before it is sent (" + result.refusal + "): " + result.refusal_message), "\n\n");
      }
    }
  }

  function renderUser(result) {
    const box = $("user");
    const notes = $("reply-notes");
    notes.replaceChildren();
    const r = result.reply;
    if (!r) {
      box.replaceChildren(result.input_kind === "embeddings" && !result.blocked ? "Embeddings: vectors come back, no text to screen."
        : el("span", { class: "blocked" }, "No reply: the request is refused with an error" + (result.refusal ? " (" + result.refusal + ")." : " naming the types.")));
      return;
    }
    box.replaceChildren(r.blocked ? el("span", { class: "blocked" }, r.user_text) : r.user_text);
    const items = [];
    items.push(el("li", {}, "Restored: " + (r.restored.length ? r.restored.join(", ") : "nothing")));
    items.push(el("li", {}, "Output-side PII: " + (r.output_pii.length
      ? r.output_pii.map((o) => o.entity_type + " " + o.action + " (" + Number(o.score).toFixed(2) + ")").join(", ") : "none found")));
    if (r.toxicity) {
      const scores = Object.entries(r.toxicity.max_scores).map(([k, v]) => k + " " + Number(v).toFixed(2)).join(", ");
      items.push(el("li", {}, "Toxicity (" + r.toxicity.scorer + "): " + r.toxicity.decision + (scores ? " — " + scores : "")));
    } else {
      items.push(el("li", {}, "Toxicity screening: off in this policy"));
    }
    notes.append(el("ul", {}, ...items));
  }

  function runBody(extra) {
    const body = { op: "run", policy: $("policy").value, input: $("input").value };
    const reply = $("reply").value;
    if (reply.trim()) body.reply = reply;
    return Object.assign(body, extra || {});
  }

  async function run() {
    if (!$("input").value.trim()) { status("Type or paste an input first.", true); $("input").focus(); return; }
    status("Running…");
    try {
      const data = await call(runBody());
      const result = data.live;
      $("result-policy").textContent = "(" + result.policy + " " + result.policy_version + ")";
      renderOriginal(result);
      renderProvider(result);
      renderUser(result);
      $("results").hidden = false;
      status("Dry run done: " + result.detected.length + " value(s) detected" + (result.blocked ? "; blocked." : "."));
    } catch (e) {
      status(e.message, true);
    }
  }

  // ---- draft ---------------------------------------------------------------------------------
  function goToLine(line, col) {
    const ta = $("draft");
    const lines = ta.value.split("\n");
    let offset = 0;
    for (let i = 0; i < Math.min(line - 1, lines.length); i++) offset += lines[i].length + 1;
    const start = offset + Math.max(0, (col || 1) - 1);
    ta.focus();
    ta.setSelectionRange(start, offset + (lines[line - 1] || "").length);
    const lineHeight = parseFloat(getComputedStyle(ta).lineHeight) || 18;
    ta.scrollTop = Math.max(0, (line - 4) * lineHeight); // show the line, with a little context above
  }

  function problemList(problems) {
    return el("ul", {}, ...problems.map((p) => {
      const m = /^[^:\s]+:(\d+):(\d+)/.exec(p);
      const content = m ? el("button", { type: "button", onclick: () => goToLine(Number(m[1]), Number(m[2])) }, p) : p;
      return el("li", { class: "problem" }, content);
    }));
  }

  function draftHeader(d) {
    if (d.ok) return el("p", { class: "ok" }, "Valid: " + d.name + " " + d.version + (d.chain.length > 1 ? " (extends " + d.chain.slice(1).join(" → ") + ")" : "") + ". Not in force: download it and commit it to your policies.");
    return el("div", {}, el("p", { class: "problem" }, d.problems.length + " problem(s):"), problemList(d.problems));
  }

  async function check() {
    const out = $("draft-out");
    try {
      const d = await call({ op: "check", policy: $("policy").value, draft: $("draft").value });
      out.replaceChildren(draftHeader(d));
      status(d.ok ? "Draft is valid." : "Draft has problems.", !d.ok);
    } catch (e) { status(e.message, true); }
  }

  async function test() {
    const out = $("draft-out");
    status("Running golden tests…");
    try {
      const d = await call({ op: "test", policy: $("policy").value, draft: $("draft").value });
      const parts = [draftHeader(d)];
      if (d.ok) {
        parts.push(el("p", {}, "Golden examples: " + d.passed + " passing, " + d.failed + " failing" + (d.results.length ? "" : " (the draft has no `tests:`)")));
        parts.push(el("ul", {}, ...d.results.map((r) => el("li", { class: r.passed ? "pass" : "fail" },
          (r.passed ? "PASS " : "FAIL ") + "#" + (r.index + 1) + " " + r.name + " [" + (r.detected.join(", ") || "nothing detected") + "]",
          r.failures.length ? el("ul", {}, ...r.failures.map((f) => el("li", {}, f))) : null))));
      }
      out.replaceChildren(...parts);
      status(d.ok ? "Golden tests: " + d.passed + " passing, " + d.failed + " failing." : "Draft has problems.", !d.ok || d.failed > 0);
    } catch (e) { status(e.message, true); }
  }

  async function diff() {
    const out = $("draft-out");
    if (!$("input").value.trim()) { status("Type an input to compare on first.", true); $("input").focus(); return; }
    status("Comparing the draft with the live policy…");
    try {
      const data = await call(runBody({ draft: $("draft").value }));
      const d = data.draft;
      const parts = [draftHeader(d)];
      if (data.diff) {
        const df = data.diff;
        parts.push(el("p", {}, df.same ? "No change on this input." : df.changes.length + " detection change(s) on this input."));
        if (df.changes.length) {
          parts.push(el("table", { class: "diff-table" }, el("caption", {}, "What the draft changes"),
            el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Change"), el("th", { scope: "col" }, "Type"),
              el("th", { scope: "col" }, "Action"), el("th", { scope: "col" }, "Where"))),
            el("tbody", {}, ...df.changes.map((c) => el("tr", {}, el("td", {}, c.change), el("td", {}, c.entity_type),
              el("td", {}, c.live_action ? c.live_action + " → " + c.action : c.action),
              el("td", {}, (c.start === null ? "a value" : c.start + "–" + c.end) + (c.slot === "input" ? "" : " of " + c.slot)))))));
        }
        const row = (label, pair) => el("tr", {}, el("th", { scope: "row" }, label + (pair.changed ? " (changed)" : " (same)")),
          el("td", {}, el("pre", {}, pair.live === null ? "—" : pair.live)), el("td", {}, el("pre", {}, pair.draft === null ? "—" : pair.draft)));
        parts.push(el("table", { class: "diff-table" }, el("caption", {}, "Live and draft side by side"),
          el("thead", {}, el("tr", {}, el("th", { scope: "col" }, ""), el("th", { scope: "col" }, "Live"), el("th", { scope: "col" }, "Draft"))),
          el("tbody", {}, row("Provider receives", df.provider_text), row("User gets back", df.user_text))));
      }
      out.replaceChildren(...parts);
      status(d.ok ? "Compared." : "Draft has problems.", !d.ok);
    } catch (e) { status(e.message, true); }
  }

  function download() {
    const name = ($("policy").value || "draft") + ".yaml";
    const url = URL.createObjectURL(new Blob([$("draft").value], { type: "application/yaml" }));
    const a = el("a", { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
    status("Downloaded " + name + " (your browser's download folder).");
  }

  // ---- wiring --------------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", () => {
    $("key").addEventListener("change", () => { clientKey = $("key").value.trim(); loadPolicies(); });
    $("policy").addEventListener("change", () => { $("results").hidden = true; loadSource(); });
    $("run").addEventListener("click", run);
    $("load").addEventListener("click", loadSource);
    $("check").addEventListener("click", check);
    $("test").addEventListener("click", test);
    $("diff").addEventListener("click", diff);
    $("download").addEventListener("click", download);
    for (const id of ["input", "reply"]) {
      $(id).addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); run(); }
      });
    }
    loadPolicies();
  });
})();
