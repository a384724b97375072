"""The page ``python -m RMBG serve`` answers at ``/``: drop a photo, pick the mode, see before and after.

One self-contained HTML document (no build step, no external assets) that
posts the photo to ``/api/remove`` and shows the answer beside the photo with
a download link. Kept as a string so that it is installed with the package.
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>RMBG: remove the background</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 72rem; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.4rem; }
  form { display: flex; flex-wrap: wrap; gap: .8rem 1.2rem; align-items: end; }
  label { display: flex; flex-direction: column; font-size: .85rem; gap: .2rem; }
  #drop { flex: 1 1 100%; border: 2px dashed #888; border-radius: .5rem; padding: 1.5rem; text-align: center;
          cursor: pointer; }
  #drop.over { background: #eef4ff; border-color: #36c; }
  .pair { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; margin-top: 1rem; }
  figure { margin: 0; }
  figure img { max-width: 100%; display: block; }
  #after { background: repeating-conic-gradient(#ccc 0 25%, #999 0 50%) 0 0 / 24px 24px; }
  #status.error { color: #b00; }
  [hidden] { display: none !important; }
</style>
</head>
<body>
<h1>Remove the background</h1>
<form id="form">
  <label id="drop" for="file">Drop a photo here, or click to choose one
    <input id="file" name="file" type="file" accept="image/*" required hidden>
  </label>
  <label>Mode
    <select id="mode" name="mode">
      <option value="rgba">cut-out (transparent)</option>
      <option value="mask">mask</option>
      <option value="color">colour background</option>
      <option value="blur">blurred background</option>
      <option value="image">picture background</option>
      <option value="side-by-side">side by side</option>
    </select>
  </label>
  <label>Colour <input id="bg_color" name="bg_color" type="color" value="#ffffff"></label>
  <label id="background-label" hidden>Background picture
    <input id="background" name="background" type="file" accept="image/*"></label>
  <label>Format
    <select id="format" name="format"><option>png</option><option>webp</option><option>jpg</option></select>
  </label>
  <label>Model <select id="model" name="model"></select></label>
  <label>API key <input id="key" type="password" autocomplete="off" placeholder="if the server needs one"></label>
  <button id="go" type="submit">Remove background</button>
</form>
<p id="status" role="status"></p>
<div class="pair">
  <figure><figcaption>Before</figcaption><img id="before" alt="the photo"></figure>
  <figure><figcaption>After <a id="download" download hidden>download</a></figcaption>
    <img id="after" alt="the result" hidden></figure>
</div>
<script>
const $ = (id) => document.getElementById(id);
const status = (text, bad) => { $("status").textContent = text; $("status").className = bad ? "error" : ""; };
const headers = () => ($("key").value ? { "X-API-Key": $("key").value } : {});
let urls = [];

async function loadModels() {
  try {
    const reply = await fetch("/api/models", { headers: headers() });
    if (!reply.ok) return;
    const info = await reply.json();
    $("model").replaceChildren(...info.models.map((m) => new Option(m.name, m.name)));
  } catch (e) { /* the form still works with the server's default model */ }
}

function show(file) {
  urls.forEach(URL.revokeObjectURL);
  urls = [URL.createObjectURL(file)];
  $("before").src = urls[0];
  $("after").hidden = true;
  $("download").hidden = true;
  $("drop").firstChild.textContent = file.name + " ";
}

$("file").addEventListener("change", () => $("file").files[0] && show($("file").files[0]));
$("mode").addEventListener("change", () => { $("background-label").hidden = $("mode").value !== "image"; });
$("key").addEventListener("change", loadModels);
for (const kind of ["dragover", "dragleave", "drop"]) {
  $("drop").addEventListener(kind, (event) => {
    event.preventDefault();
    $("drop").classList.toggle("over", kind === "dragover");
    if (kind === "drop" && event.dataTransfer.files.length) {
      $("file").files = event.dataTransfer.files;
      show($("file").files[0]);
    }
  });
}

$("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!$("file").files.length) { status("Choose a photo first.", true); return; }
  const body = new FormData($("form"));
  if ($("mode").value !== "image") body.delete("background");
  if (!$("model").value) body.delete("model");
  status("Working...");
  $("go").disabled = true;
  const started = performance.now();
  try {
    const reply = await fetch("/api/remove", { method: "POST", body, headers: headers() });
    if (!reply.ok) {
      const problem = await reply.json().catch(() => ({ error: reply.statusText, detail: "" }));
      status(`${reply.status} ${problem.error}: ${problem.detail}`, true);
      return;
    }
    const url = URL.createObjectURL(await reply.blob());
    urls.push(url);
    $("after").src = url;
    $("after").hidden = false;
    $("download").href = url;
    $("download").download = "cutout." + $("format").value;
    $("download").hidden = false;
    status(`Done in ${Math.round(performance.now() - started)} ms.`);
  } catch (e) {
    status("The server could not be reached: " + e, true);
  } finally {
    $("go").disabled = false;
  }
});

loadModels();
</script>
</body>
</html>
"""
