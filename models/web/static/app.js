// The matching page: send a sound, follow its place in the queue and its progress, show the result.
"use strict";

const $ = (id) => document.getElementById(id);
const POLL_MS = 250;
let chosen = null; // the File to send (picked, dropped or recorded)
let current = null; // the id of the job this page follows
let timer = null;

function showMessage(text, kind) {
  const box = $("message");
  box.textContent = text;
  box.className = "message" + (kind ? " " + kind : "");
  box.hidden = !text;
}

function choose(file) {
  chosen = file;
  $("drop-text").textContent = file ? file.name : "Drop a sound here or choose a file";
  showMessage("");
}

async function api(url, options) {
  const response = await fetch(url, options);
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    throw new Error((body && body.error) || "the server answered " + response.status);
  }
  return body;
}

function post(url, body) {
  return api(url, { method: "POST", body: body, headers: { "X-InverSynth": "1" } });
}

async function submit(event) {
  event.preventDefault();
  const file = chosen || $("sound").files[0];
  if (!file) { showMessage("Choose or drop a sound first."); return; }
  const form = new FormData();
  form.append("sound", file, file.name);
  for (const name of ["model", "method", "budget_s", "budget_renders"]) {
    form.append(name, $(name).value);
  }
  $("go").disabled = true;
  showMessage("");
  try {
    const job = await post("/api/jobs", form);
    follow(job);
  } catch (error) {
    showMessage(error.message);
    $("go").disabled = false;
  }
}

const count = (n) => Number(n).toLocaleString("en-US");

function budgetText(job) { // "4,000 renders", "4,000 renders or 1.5 s", "1.5 s"
  const parts = [];
  if (job.budget_renders) parts.push(count(job.budget_renders) + " renders");
  if (job.budget_s) parts.push(job.budget_s + " s");
  return parts.join(" or ");
}

// How far a running match is through its budget, 0 to 1: renders done of the budget, or the
// time spent of a time cap, whichever is further (the match ends at the first of the two).
function fraction(job) {
  const progress = job.progress;
  let done = 0;
  if (job.budget_renders && progress) done = progress.renders / job.budget_renders;
  if (job.budget_s) done = Math.max(done, (progress ? progress.seconds : 0) / job.budget_s);
  return Math.min(1, done);
}

function describe(job) {
  if (job.status === "queued") {
    const ahead = job.ahead === 1 ? "1 match is" : job.ahead + " matches are";
    return "waiting its turn: " + ahead + " ahead of it" +
      (job.warming_up ? " (the model is loading)" : "");
  }
  if (job.status === "running") {
    if (job.cancel_requested) return "cancelling: it stops at its next batch of renders...";
    const progress = job.progress;
    if (job.stage !== "matching" || !progress) {
      return job.stage + "... " + job.elapsed_s.toFixed(1) + " s";
    }
    if (fraction(job) >= 1) return "writing the files... " + job.elapsed_s.toFixed(1) + " s";
    let text = "matching: " + count(progress.renders);
    text += job.budget_renders ? " of " + count(job.budget_renders) + " renders" : " renders";
    if (job.budget_s) text += ", " + progress.seconds.toFixed(1) + " of " + job.budget_s + " s";
    return text + "; best so far " + progress.best_distance_db.toFixed(2) + " dB apart";
  }
  return job.status;
}

function follow(job) {
  current = job.id;
  $("status").hidden = false;
  $("cancel").hidden = false;
  $("cancel").disabled = false;
  $("go").disabled = true;
  update(job);
  refreshHistory();
}

function update(job) {
  if (job.id !== current) return;
  $("status-name").textContent = job.name;
  $("status-text").textContent = describe(job);
  const bar = $("status-bar");
  if (job.status === "running" && job.stage === "matching") {
    bar.value = fraction(job);
  } else if (job.status === "queued") {
    bar.removeAttribute("value");
  } else {
    bar.value = job.status === "done" ? 1 : 0;
  }
  if (job.status === "queued" || job.status === "running") {
    clearTimeout(timer);
    timer = setTimeout(() => poll(job.id), POLL_MS);
    return;
  }
  finished(job);
}

async function poll(id) {
  try {
    update(await api("/api/jobs/" + id));
  } catch (error) {
    showMessage(error.message);
    finished(null);
  }
}

function finished(job) {
  current = null;
  $("cancel").hidden = true;
  $("go").disabled = false;
  $("status").hidden = true;
  refreshHistory();
  if (!job) return;
  if (job.status === "done") showResult(job.id);
  else if (job.status === "failed") showMessage(job.error);
  else if (job.status === "cancelled") showMessage("The match of " + job.name + " was cancelled.", "info");
}

async function cancel() {
  if (!current) return;
  $("cancel").disabled = true;
  $("status-text").textContent = "cancelling...";
  // The answer comes once the match has stopped (at its next batch of renders).
  try { update(await post("/api/jobs/" + current + "/cancel")); } catch (error) { showMessage(error.message); }
}

let playing = []; // object URLs of the players shown, released when the result is replaced

async function showResult(id) {
  const response = await fetch("/jobs/" + id + "/result");
  if (!response.ok) { showMessage("That result is gone."); return; }
  playing.forEach((url) => URL.revokeObjectURL(url));
  playing = [];
  $("result").innerHTML = await response.text();
  for (const figure of $("result").querySelectorAll("figure.player")) {
    const audio = figure.querySelector("audio");
    if (audio) loadPlayer(audio, figure.querySelector("canvas"));
  }
}

// Each WAV is fetched once: the player plays it and the spectrogram is drawn from it.
async function loadPlayer(audio, canvas) {
  try {
    const response = await fetch(audio.dataset.src);
    if (!response.ok) throw new Error(response.statusText);
    const buffer = await response.arrayBuffer();
    const url = URL.createObjectURL(new Blob([buffer], { type: "audio/wav" }));
    playing.push(url);
    audio.src = url;
    drawSpectrogram(canvas, buffer);
  } catch (error) {
    audio.src = audio.dataset.src;
    canvas.remove();
  }
}

// adopt: follow a match of this session still under way (on opening the page, so that a
// reload keeps following its match); never after this tab's own match, whose result would
// be replaced by another tab's.
async function refreshHistory(adopt = false) {
  let jobs;
  try { jobs = await api("/api/jobs"); } catch (error) { return; }
  const list = $("history");
  list.textContent = "";
  if (!jobs.length) {
    list.innerHTML = '<li class="muted">None yet.</li>';
    return;
  }
  for (const job of jobs) {
    const item = document.createElement("li");
    item.className = job.status;
    item.textContent = job.name + " (" + job.method + ", " + budgetText(job) + ", " +
      job.model_label + "): " + (job.status === "failed" ? job.error : describe(job));
    if (job.status === "done") {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "secondary";
      button.textContent = "Show";
      button.addEventListener("click", () => showResult(job.id));
      item.appendChild(button);
    }
    list.appendChild(item);
  }
  const active = jobs.find((j) => j.status === "queued" || j.status === "running");
  if (adopt && active && !current) follow(active);
}

// ---- spectrograms: the page reads its own PCM WAV files, no audio device needed ----
function readWav(buffer) {
  const view = new DataView(buffer);
  let offset = 12, rate = 0, channels = 1, bits = 16, format = 1;
  while (offset + 8 <= view.byteLength) {
    const id = String.fromCharCode(...new Uint8Array(buffer, offset, 4));
    const size = view.getUint32(offset + 4, true);
    if (id === "fmt ") {
      format = view.getUint16(offset + 8, true);
      channels = view.getUint16(offset + 10, true);
      rate = view.getUint32(offset + 12, true);
      bits = view.getUint16(offset + 22, true);
    } else if (id === "data") {
      const step = (bits / 8) * channels;
      const n = Math.floor(Math.min(size, view.byteLength - offset - 8) / step);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const at = offset + 8 + i * step;
        out[i] = format === 3 ? view.getFloat32(at, true) : view.getInt16(at, true) / 32768;
      }
      return { samples: out, rate: rate };
    }
    offset += 8 + size + (size % 2);
  }
  throw new Error("not a WAV file");
}

function fft(re, im) { // in place, radix 2
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) { [re[i], re[j]] = [re[j], re[i]]; [im[i], im[j]] = [im[j], im[i]]; }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const angle = -2 * Math.PI / len;
    for (let i = 0; i < n; i += len) {
      for (let k = 0; k < len / 2; k++) {
        const c = Math.cos(angle * k), s = Math.sin(angle * k);
        const a = i + k, b = a + len / 2;
        const tr = re[b] * c - im[b] * s, ti = re[b] * s + im[b] * c;
        re[b] = re[a] - tr; im[b] = im[a] - ti; re[a] += tr; im[a] += ti;
      }
    }
  }
}

function color(t) { // dark blue -> purple -> orange -> pale yellow
  const stops = [[16, 19, 26], [80, 30, 120], [200, 70, 60], [250, 170, 40], [252, 250, 190]];
  const x = Math.max(0, Math.min(0.9999, t)) * (stops.length - 1);
  const i = Math.floor(x), f = x - i;
  return stops[i].map((v, c) => Math.round(v + f * (stops[i + 1][c] - v)));
}

function drawSpectrogram(canvas, buffer) {
  const { samples, rate } = readWav(buffer);
  const size = 512, hop = 128, bins = size / 2;
  const frames = Math.max(1, Math.floor((samples.length - size) / hop) + 1);
  const window = Float64Array.from({ length: size }, (_, i) => 0.5 - 0.5 * Math.cos(2 * Math.PI * i / size));
  const db = [];
  for (let f = 0; f < frames; f++) {
    const re = new Float64Array(size), im = new Float64Array(size);
    for (let i = 0; i < size; i++) re[i] = (samples[f * hop + i] || 0) * window[i];
    fft(re, im);
    const column = new Float32Array(bins);
    for (let k = 0; k < bins; k++) column[k] = 10 * Math.log10(re[k] * re[k] + im[k] * im[k] + 1e-10);
    db.push(column);
  }
  const top = 20 * Math.log10(size / 4); // a full-scale sine through the Hann window
  const nyquist = rate / 2, mel = (f) => 2595 * Math.log10(1 + f / 700);
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(canvas.width, canvas.height);
  for (let y = 0; y < canvas.height; y++) { // a mel frequency axis, low notes at the bottom
    const m = mel(nyquist) * (canvas.height - 1 - y) / (canvas.height - 1);
    const k = Math.min(bins - 1, Math.round(700 * (Math.pow(10, m / 2595) - 1) / nyquist * bins));
    for (let x = 0; x < canvas.width; x++) {
      const [r, g, b] = color((db[Math.floor(x * frames / canvas.width)][k] - top + 80) / 80);
      const at = 4 * (y * canvas.width + x);
      image.data[at] = r; image.data[at + 1] = g; image.data[at + 2] = b; image.data[at + 3] = 255;
    }
  }
  ctx.putImageData(image, 0, 0);
  canvas.dataset.drawn = "yes";
}

// ---- recording: the browser's own format is decoded and sent as a 16-bit WAV ----
function wavFile(buffer) {
  const n = buffer.length, rate = buffer.sampleRate;
  const mono = new Float32Array(n);
  for (let c = 0; c < buffer.numberOfChannels; c++) {
    const data = buffer.getChannelData(c);
    for (let i = 0; i < n; i++) mono[i] += data[i] / buffer.numberOfChannels;
  }
  const out = new DataView(new ArrayBuffer(44 + 2 * n));
  const text = (at, s) => { for (let i = 0; i < s.length; i++) out.setUint8(at + i, s.charCodeAt(i)); };
  text(0, "RIFF"); out.setUint32(4, 36 + 2 * n, true); text(8, "WAVE"); text(12, "fmt ");
  out.setUint32(16, 16, true); out.setUint16(20, 1, true); out.setUint16(22, 1, true);
  out.setUint32(24, rate, true); out.setUint32(28, 2 * rate, true); out.setUint16(32, 2, true);
  out.setUint16(34, 16, true); text(36, "data"); out.setUint32(40, 2 * n, true);
  for (let i = 0; i < n; i++) out.setInt16(44 + 2 * i, Math.max(-1, Math.min(1, mono[i])) * 32767, true);
  return new File([out.buffer], "recording.wav", { type: "audio/wav" });
}

let recorder = null;
async function record() {
  if (recorder) { recorder.stop(); return; }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    showMessage("The microphone is not available: " + error.message);
    return;
  }
  const chunks = [];
  recorder = new MediaRecorder(stream);
  recorder.ondataavailable = (event) => chunks.push(event.data);
  recorder.onstop = async () => {
    stream.getTracks().forEach((track) => track.stop());
    recorder = null;
    $("record").textContent = "Record from the microphone";
    try {
      const blob = new Blob(chunks, { type: chunks[0] ? chunks[0].type : "" });
      const context = new AudioContext();
      choose(wavFile(await context.decodeAudioData(await blob.arrayBuffer())));
      context.close();
      $("record-status").textContent = "recorded";
    } catch (error) {
      showMessage("The recording could not be read: " + error.message);
    }
  };
  recorder.start();
  $("record").textContent = "Stop recording";
  $("record-status").textContent = "recording... (stops by itself after 5 s)";
  setTimeout(() => { if (recorder) recorder.stop(); }, 5000);
}

function offerLookup() { // lookup needs the model's dataset on this machine
  const model = $("model").selectedOptions[0];
  const lookup = $("method").querySelector('option[value="lookup"]');
  if (!model || !lookup) return;
  lookup.disabled = model.dataset.lookup !== "yes";
  if (lookup.disabled && $("method").value === "lookup") $("method").value = "hybrid";
}

function setUp() {
  $("model").addEventListener("change", offerLookup);
  offerLookup();
  $("match-form").addEventListener("submit", submit);
  $("cancel").addEventListener("click", cancel);
  $("sound").addEventListener("change", () => choose($("sound").files[0] || null));
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) choose(event.dataTransfer.files[0]);
  });
  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.MediaRecorder) {
    $("record").hidden = false;
    $("record").addEventListener("click", record);
  }
  refreshHistory(true);
}

document.addEventListener("DOMContentLoaded", setUp);
