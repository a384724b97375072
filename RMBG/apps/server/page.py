"""The page ``python -m RMBG serve`` answers at ``/``: drop photos, pick the options, see before and after.

One self-contained HTML document (no build step, no external assets): the
options of ``/api/remove`` (mode, background colour or picture, format, crop
with a margin, clean-up, refinement, model, invert, largest subject, edge
colours), one card per photo with a progress line, a before/after split over a
checkerboard, a box drawn on the photo (sent as the ``box`` field) and a
download, and a ZIP of all results. Nothing is shown before a photo is chosen.
The behaviour is :data:`RMBG.apps.server.page_script.SCRIPT`; the page is kept
as strings so that it is installed with the package.
"""

from RMBG.apps.server.page_script import SCRIPT

STYLE = """
  body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 76rem; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.4rem; }
  #drop { display: block; border: 2px dashed #888; border-radius: .5rem; padding: 1.5rem; text-align: center;
          cursor: pointer; }
  #drop.over { background: #eef4ff; border-color: #36c; }
  fieldset { display: flex; flex-wrap: wrap; gap: .8rem 1.2rem; align-items: end; border: 1px solid #ddd;
             border-radius: .5rem; margin: 1rem 0; }
  label { display: flex; flex-direction: column; font-size: .85rem; gap: .2rem; }
  label.check { flex-direction: row; align-items: center; }
  #margin { width: 5rem; }
  .actions { display: flex; gap: .8rem; align-items: center; }
  #status.error, .progress.error { color: #b00; }
  #results { display: grid; grid-template-columns: repeat(auto-fill, minmax(21rem, 1fr)); gap: 1rem; margin-top: 1rem; }
  .card { border: 1px solid #ddd; border-radius: .5rem; padding: .6rem; }
  .card header { display: flex; justify-content: space-between; gap: .6rem; font-size: .9rem; }
  .name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .progress { color: #555; text-align: right; }
  .progress.done { color: #186a2e; }
  .stage { position: relative; margin: .5rem 0; user-select: none; touch-action: none; line-height: 0; }
  .stage img { width: 100%; display: block; }
  .stage .after { position: absolute; inset: 0; height: 100%; clip-path: inset(0 0 0 var(--split, 50%));
                  background: repeating-conic-gradient(#ccc 0 25%, #999 0 50%) 0 0 / 20px 20px; }
  .stage.apart .after { position: static; clip-path: none; }
  .stage.apart .before { display: none; }
  .handle { position: absolute; top: 0; bottom: 0; left: var(--split, 50%); border-left: 2px solid #fff;
            box-shadow: 0 0 0 1px #0006; cursor: ew-resize; }
  .handle::after { content: ""; position: absolute; top: 50%; left: -9px; width: 16px; height: 16px;
                   border-radius: 50%; background: #fff; box-shadow: 0 0 2px #000; }
  .stage.drawing { cursor: crosshair; }
  .box { position: absolute; border: 2px dashed #e0c; background: #e0c2; pointer-events: none; }
  .unviewable { padding: 2rem 1rem; background: #f4f4f4; text-align: center; line-height: 1.4; color: #555; }
  .tools { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; font-size: .85rem; }
  [hidden] { display: none !important; }
"""

BODY = """
<h1>Remove the background</h1>
<form id="form">
  <label id="drop" for="file">Drop photos here, or click to choose them (several at once)
    <input id="file" type="file" accept="image/*" multiple hidden>
  </label>
  <fieldset>
    <legend>Options</legend>
    <label>Mode
      <select id="mode">
        <option value="rgba">cut-out (transparent)</option>
        <option value="mask">mask</option>
        <option value="color">colour background</option>
        <option value="blur">blurred background</option>
        <option value="image">picture background</option>
        <option value="side-by-side">side by side</option>
      </select>
    </label>
    <label id="color-label">Background colour <input id="bg_color" type="color" value="#ffffff"></label>
    <label id="background-label">Background picture <input id="background" type="file" accept="image/*"></label>
    <label>Format <select id="format"><option>png</option><option>webp</option><option>jpg</option></select></label>
    <label>Edges <select id="refine"><option>none</option></select></label>
    <label>Model <select id="model"></select></label>
    <label class="check"><input id="crop" type="checkbox"> Crop to the subject</label>
    <label>Margin (px) <input id="margin" type="number" min="0" step="1" value="16" size="5" disabled></label>
    <label class="check"><input id="post_process" type="checkbox"> Clean islands and holes</label>
    <label class="check"><input id="largest" type="checkbox"> Largest subject only</label>
    <label class="check"><input id="invert" type="checkbox"> Invert (keep the background)</label>
    <label class="check"><input id="foreground_estimation" type="checkbox" checked> Clean edge colours</label>
    <label>API key <input id="key" type="password" autocomplete="off" placeholder="if the server needs one"></label>
  </fieldset>
  <div class="actions">
    <button id="go" type="submit">Remove backgrounds</button>
    <button id="download-all" type="button">Download all (.zip)</button>
    <button id="clear" type="button">Clear</button>
    <a id="zip-link" download="rmbg-results.zip" hidden>zip</a>
  </div>
</form>
<p id="status" role="status"></p>
<p id="empty">No photos yet. To cut out one subject of a photo, press "Draw a box" on its card and drag a
  rectangle around it.</p>
<section id="results" aria-live="polite"></section>
<template id="card-template">
  <article class="card">
    <header><strong class="name"></strong><span class="progress">Ready</span></header>
    <div class="stage">
      <img class="before" alt="">
      <img class="after" alt="" hidden>
      <div class="handle" role="slider" tabindex="0" aria-label="split between before and after"
           aria-valuemin="0" aria-valuemax="100" hidden></div>
      <div class="box" hidden></div>
    </div>
    <div class="tools">
      <button type="button" class="box-tool" aria-pressed="false">Draw a box</button>
      <button type="button" class="clear-box" hidden>Clear the box</button>
      <span class="box-text"></span>
      <button type="button" class="redo">Run again</button>
      <a class="download" hidden>Download</a>
    </div>
  </article>
</template>
"""

PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>RMBG: remove the background</title>
<style>{STYLE}</style>
</head>
<body>{BODY}<script>{SCRIPT}</script>
</body>
</html>
"""
