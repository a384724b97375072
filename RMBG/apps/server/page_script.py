"""The script of the page ``python -m RMBG serve`` answers at ``/`` (:mod:`RMBG.apps.server.page` holds the rest).

What it does, in the browser alone (no library, nothing fetched but this
server's API):

* keeps one card per chosen or dropped photo: the photo, a progress line, a
  box tool, a download link; a photo the browser cannot show gets a line of
  text instead of a broken picture;
* posts each photo to ``/api/remove`` (two at a time, through
  ``XMLHttpRequest`` for upload progress) with the form's options and the
  card's box (``box=X0,Y0,X1,Y1`` in the photo's pixels), and shows the answer
  over the photo with a split that is dragged (or moved with the arrow keys);
  a result of another size (crop, side by side) is shown whole;
* says every error in words from the API's JSON (``status error: detail``);
* "Download all" packs the results into one ZIP file (stored, written here:
  a ZIP without compression is a few headers and a CRC-32).
"""

SCRIPT = r"""
const $ = (id) => document.getElementById(id);
const ANSWER_TYPES = { "image/png": "png", "image/webp": "webp", "image/jpeg": "jpg" };
const AT_ONCE = 2;  // requests in flight; the server queues the rest anyway
const cards = [];
let running = 0;

const status = (text, bad) => { $("status").textContent = text; $("status").className = bad ? "error" : ""; };
const keyHeader = () => ($("key").value ? { "X-API-Key": $("key").value } : {});

async function loadChoices() {
  try {
    const reply = await fetch("/api/models", { headers: keyHeader() });
    if (!reply.ok) { status(await problemOf(reply.status, await reply.text()), true); return; }
    const info = await reply.json();
    $("model").replaceChildren(...info.models.map((m) => new Option(`${m.name} (${m.input_size} px)`, m.name)));
    $("refine").replaceChildren(...info.refine.map((r) => new Option(r, r)));
  } catch (e) { status("The server could not be reached: " + e, true); }
}

function problemOf(code, text) {
  try {
    const problem = JSON.parse(text);
    return `${code} ${problem.error}: ${problem.detail}`;
  } catch (e) { return `${code}: ${text.slice(0, 200) || "no answer"}`; }
}

// ---------------------------------------------------------------- cards
function addPhotos(files) {
  for (const file of files) {
    const el = $("card-template").content.firstElementChild.cloneNode(true);
    const card = { file, el, box: null, result: null, busy: false, ran: false };
    card.before = el.querySelector(".before");
    card.after = el.querySelector(".after");
    card.stage = el.querySelector(".stage");
    card.progress = el.querySelector(".progress");
    card.link = el.querySelector(".download");
    card.photoUrl = URL.createObjectURL(file);
    el.querySelector(".name").textContent = file.name;
    el.querySelector(".name").title = file.name;
    card.before.alt = "the photo " + file.name;
    card.before.addEventListener("error", () => {
      const note = document.createElement("p");
      note.className = "unviewable";
      note.textContent = "This browser cannot show " + file.name + "; the server will say what it makes of it.";
      card.before.replaceWith(note);
      card.before = note;
    }, { once: true });
    card.before.src = card.photoUrl;
    wireStage(card);
    el.querySelector(".box-tool").addEventListener("click", () => setDrawing(card, !card.drawing));
    el.querySelector(".clear-box").addEventListener("click", () => setBox(card, null));
    el.querySelector(".redo").addEventListener("click", () => queue([card]));
    cards.push(card);
    $("results").append(el);
  }
  refreshButtons();
}

function refreshButtons() {
  $("empty").hidden = cards.length > 0;
  $("go").disabled = cards.length === 0;
  $("clear").disabled = cards.length === 0 || running > 0;
  $("download-all").disabled = !cards.some((c) => c.result);
}

function setProgress(card, text, kind) {
  card.progress.textContent = text;
  card.progress.className = "progress" + (kind ? " " + kind : "");
}

// ---------------------------------------------------------------- the split and the box
function fraction(card, event) {
  const rect = card.stage.getBoundingClientRect();
  const clamp = (v) => Math.min(1, Math.max(0, v));
  return [clamp((event.clientX - rect.left) / rect.width), clamp((event.clientY - rect.top) / rect.height)];
}

function setSplit(card, percent) {
  percent = Math.min(100, Math.max(0, percent));
  card.stage.style.setProperty("--split", percent + "%");
  card.el.querySelector(".handle").setAttribute("aria-valuenow", String(Math.round(percent)));
}

function setDrawing(card, on) {
  card.drawing = on && card.before.tagName === "IMG";
  card.stage.classList.toggle("drawing", card.drawing);
  card.el.querySelector(".box-tool").setAttribute("aria-pressed", String(card.drawing));
}

function showBox(card, f0, f1) {
  const el = card.el.querySelector(".box");
  el.hidden = false;
  el.style.left = Math.min(f0[0], f1[0]) * 100 + "%";
  el.style.top = Math.min(f0[1], f1[1]) * 100 + "%";
  el.style.width = Math.abs(f1[0] - f0[0]) * 100 + "%";
  el.style.height = Math.abs(f1[1] - f0[1]) * 100 + "%";
}

function setBox(card, box) {
  card.box = box;
  card.el.querySelector(".box").hidden = !box;
  card.el.querySelector(".clear-box").hidden = !box;
  card.el.querySelector(".box-text").textContent = box ? "box " + box.join(",") : "";
  if (card.ran) queue([card]);  // a new box on a photo already done: run it again
}

function wireStage(card) {
  let start = null;
  card.stage.addEventListener("pointerdown", (event) => {
    if (card.drawing) start = fraction(card, event);
    else if (card.result && !card.stage.classList.contains("apart")) start = "split";
    else return;
    card.stage.setPointerCapture(event.pointerId);
    if (start === "split") setSplit(card, fraction(card, event)[0] * 100);
    event.preventDefault();
  });
  card.stage.addEventListener("pointermove", (event) => {
    if (start === "split") setSplit(card, fraction(card, event)[0] * 100);
    else if (start) showBox(card, start, fraction(card, event));
  });
  card.stage.addEventListener("pointerup", (event) => {
    if (start && start !== "split") {
      const end = fraction(card, event), w = card.before.naturalWidth, h = card.before.naturalHeight;
      const box = [Math.min(start[0], end[0]) * w, Math.min(start[1], end[1]) * h,
                   Math.max(start[0], end[0]) * w, Math.max(start[1], end[1]) * h].map(Math.round);
      setDrawing(card, false);
      if (box[2] - box[0] >= 4 && box[3] - box[1] >= 4) setBox(card, box);
      else setBox(card, card.box);  // a click, not a box: keep the one there was
    }
    start = null;
  });
  const handle = card.el.querySelector(".handle");
  handle.addEventListener("keydown", (event) => {
    const now = parseFloat(card.stage.style.getPropertyValue("--split") || "50");
    const step = { ArrowLeft: -5, ArrowRight: 5 }[event.key];
    if (step) { setSplit(card, now + step); event.preventDefault(); }
  });
}

// ---------------------------------------------------------------- requests
function formFor(card) {
  const body = new FormData();
  body.append("file", card.file, card.file.name);
  const mode = $("mode").value;
  body.append("mode", mode);
  if (mode === "color") body.append("bg_color", $("bg_color").value);
  if (mode === "image" && $("background").files.length) body.append("background", $("background").files[0]);
  body.append("format", $("format").value);
  if ($("refine").value) body.append("refine", $("refine").value);
  if ($("model").value) body.append("model", $("model").value);
  for (const name of ["post_process", "largest", "invert", "foreground_estimation"]) {
    body.append(name, $(name).checked ? "true" : "false");
  }
  if ($("crop").checked) body.append("crop_margin", $("margin").value || "0");
  if (card.box) body.append("box", card.box.join(","));
  return body;
}

function send(card) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    const started = performance.now();
    const seconds = () => ((performance.now() - started) / 1000).toFixed(1) + " s";
    xhr.open("POST", "/api/remove");
    xhr.responseType = "blob";
    for (const [name, value] of Object.entries(keyHeader())) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => e.lengthComputable &&
      setProgress(card, `Uploading ${Math.round((100 * e.loaded) / e.total)} %`);
    xhr.upload.onload = () => setProgress(card, "Working on the server...");
    xhr.onload = async () => {
      if (xhr.status === 200) {
        showResult(card, xhr.response, xhr.getResponseHeader("Content-Type") || "");
        setProgress(card, `Done in ${seconds()} (${Math.round(xhr.response.size / 1024)} KB)`, "done");
      } else {
        setProgress(card, problemOf(xhr.status, await xhr.response.text()), "error");
      }
      resolve();
    };
    xhr.onerror = () => { setProgress(card, "The server could not be reached.", "error"); resolve(); };
    setProgress(card, "Uploading...");
    xhr.send(formFor(card));
  });
}

function showResult(card, blob, type) {
  if (card.result) URL.revokeObjectURL(card.result.url);
  const stem = card.file.name.replace(/\.[^.]*$/, "") || "photo";
  const name = `${stem}-${$("mode").value}.${ANSWER_TYPES[type.split(";")[0]] || "bin"}`;
  card.result = { blob, name, url: URL.createObjectURL(blob) };
  card.after.onload = () => {
    const sameSize = card.before.tagName === "IMG" && card.after.naturalWidth === card.before.naturalWidth &&
      card.after.naturalHeight === card.before.naturalHeight;
    card.stage.classList.toggle("apart", !sameSize);  // crop or side by side: the result alone
    card.el.querySelector(".handle").hidden = !sameSize;
    card.after.hidden = false;
  };
  card.after.alt = "the result for " + card.file.name;
  card.after.src = card.result.url;
  card.link.href = card.result.url;
  card.link.download = name;
  card.link.hidden = false;
  setSplit(card, 50);
}

function queue(list) {
  for (const card of list) {
    if (card.busy) continue;
    card.busy = true;
    card.ran = true;
    setProgress(card, "Waiting...");
    card.waiting = true;
  }
  pump();
}

function pump() {
  while (running < AT_ONCE) {
    const card = cards.find((c) => c.waiting);
    if (!card) break;
    card.waiting = false;
    running += 1;
    send(card).finally(() => { running -= 1; card.busy = false; pump(); refreshButtons(); });
  }
  refreshButtons();
  const left = cards.filter((c) => c.busy).length;
  const failed = cards.filter((c) => c.progress.classList.contains("error")).length;
  if (left) status(`${left} of ${cards.length} photo(s) in progress.`);
  else if (cards.length) status(failed ? `Done; ${failed} of ${cards.length} failed (the photo says why).` : "All done.",
                                failed > 0);
}

// ---------------------------------------------------------------- download all: a stored ZIP
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

async function zipOf(entries) {
  const parts = [], central = [];
  let offset = 0;
  for (const { name, blob } of entries) {
    const data = new Uint8Array(await blob.arrayBuffer()), path = new TextEncoder().encode(name);
    const crc = crc32(data), local = new DataView(new ArrayBuffer(30)), entry = new DataView(new ArrayBuffer(46));
    // local header: signature, version 2.0, UTF-8 names, stored, 1980-01-01, crc, sizes, name length
    [[0, 0x04034b50, 4], [4, 20, 2], [6, 0x0800, 2], [12, 33, 2], [14, crc, 4], [18, data.length, 4],
     [22, data.length, 4], [26, path.length, 2]].forEach(([at, v, n]) => n === 4 ? local.setUint32(at, v, true)
                                                                                   : local.setUint16(at, v, true));
    [[0, 0x02014b50, 4], [4, 20, 2], [6, 20, 2], [8, 0x0800, 2], [14, 33, 2], [16, crc, 4], [20, data.length, 4],
     [24, data.length, 4], [28, path.length, 2], [42, offset, 4]].forEach(([at, v, n]) =>
      n === 4 ? entry.setUint32(at, v, true) : entry.setUint16(at, v, true));
    parts.push(local, path, data);
    central.push(entry, path);
    offset += 30 + path.length + data.length;
  }
  const size = central.reduce((sum, part) => sum + part.byteLength, 0), end = new DataView(new ArrayBuffer(22));
  [[0, 0x06054b50, 4], [8, entries.length, 2], [10, entries.length, 2], [12, size, 4], [16, offset, 4]]
    .forEach(([at, v, n]) => n === 4 ? end.setUint32(at, v, true) : end.setUint16(at, v, true));
  return new Blob([...parts, ...central, end], { type: "application/zip" });
}

async function downloadAll() {
  const seen = new Map();
  const entries = cards.filter((c) => c.result).map((c) => {
    const count = (seen.get(c.result.name) || 0) + 1;
    seen.set(c.result.name, count);
    return { name: count > 1 ? c.result.name.replace(/(\.\w+)$/, `-${count}$1`) : c.result.name, blob: c.result.blob };
  });
  const link = $("zip-link");
  if (link.href) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(await zipOf(entries));
  link.click();
}

// ---------------------------------------------------------------- the form
$("file").addEventListener("change", () => { addPhotos($("file").files); $("file").value = ""; });
for (const kind of ["dragover", "dragleave", "drop"]) {
  $("drop").addEventListener(kind, (event) => {
    event.preventDefault();
    $("drop").classList.toggle("over", kind === "dragover");
    if (kind === "drop") addPhotos([...event.dataTransfer.files].filter((f) => f.type.startsWith("image/") || !f.type));
  });
}
const showModeFields = () => {
  $("color-label").hidden = $("mode").value !== "color";
  $("background-label").hidden = $("mode").value !== "image";
};
$("mode").addEventListener("change", showModeFields);
$("crop").addEventListener("change", () => { $("margin").disabled = !$("crop").checked; });
$("key").addEventListener("change", loadChoices);
$("form").addEventListener("submit", (event) => {
  event.preventDefault();
  if (!cards.length) { status("Choose or drop photos first.", true); return; }
  queue(cards);
});
$("download-all").addEventListener("click", downloadAll);
$("clear").addEventListener("click", () => {
  for (const card of cards.splice(0)) {
    URL.revokeObjectURL(card.photoUrl);
    if (card.result) URL.revokeObjectURL(card.result.url);
    card.el.remove();
  }
  refreshButtons();
  status("");
});
showModeFields();
refreshButtons();
loadChoices();
"""
