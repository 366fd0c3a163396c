// Run dashboard: charts of the step metrics the trainer stores, drawn with uPlot (zoom by dragging, values on hover),
// kept current by server-sent events. Text from the store (environment names, values) goes in through textContent only.
(function () {
  "use strict";
  const root = document.getElementById("dashboard");
  if (!root) return;
  const run = root.dataset.run;
  const live = document.getElementById("live");
  const lastStep = document.getElementById("last-step");
  const latest = document.querySelector("#latest tbody");

  // Each chart: a title and the series it draws, as [label, function of one step's metrics].
  function pick(key) { return m => (typeof m[key] === "number" ? m[key] : null); }
  function byEnv(key, e) { return m => (m[key] && typeof m[key][e] === "number" ? m[key][e] : null); }
  function chartsFor(envs, heldoutEnvs) {
    return [
      { title: "Reward per environment", series: envs.map(e => [e, byEnv("reward_by_env", e)]) },
      { title: "Held-out reward per environment", series: heldoutEnvs.map(e => [e, byEnv("heldout_by_env", e)]) },
      { title: "Reward and pass rate", series: [["reward mean", pick("reward_mean")], ["pass rate", pick("pass_rate")]] },
      { title: "Response length (tokens)", series: [["mean", pick("response_length_mean")], ["max", pick("response_length_max")]] },
      { title: "Truncation rate", series: [["truncated fraction", pick("truncated_fraction")]] },
      { title: "Importance sampling", series: [["out-of-bounds fraction", pick("is_oob_fraction")], ["sampler/trainer mismatch", pick("mismatch")], ["clip fraction", pick("clip_fraction")]] },
      { title: "IS ratio", series: [["mean", pick("ratio_mean")], ["max", pick("ratio_max")]] },
      { title: "KL and entropy", series: [["KL", pick("kl")], ["entropy", pick("entropy")]] },
      { title: "Advantages", series: [["mean", pick("advantage_mean")], ["spread (std)", pick("advantage_std")]] },
      { title: "Filtered groups", series: [["zero-variance fraction dropped", pick("dropped_group_fraction")], ["tasks retired", pick("tasks_retired")]] },
      { title: "Timings (s)", series: [["generate", pick("time_generate_s")], ["grade", pick("time_grade_s")], ["train", pick("time_train_s")]] },
      { title: "Grading share of step time", series: [["grade / (generate + grade + train)", m => {
        const g = m.time_grade_s, all = (m.time_generate_s || 0) + (m.time_grade_s || 0) + (m.time_train_s || 0);
        return typeof g === "number" && all > 0 ? g / all : null; }]] },
      { title: "Loss and gradient norm", series: [["loss", pick("loss")], ["grad norm", pick("grad_norm")]] },
      { title: "Throughput (tokens/s)", series: [["generate", pick("generate_tokens_per_second")], ["train", pick("train_tokens_per_second")]] },
    ];
  }
  const palette = ["#2556c4", "#d92d20", "#12b76a", "#f79009", "#7a5af8", "#0e9384", "#c11574", "#667085"];

  const steps = [];
  let shape = "";
  let charts = [];

  // The environments seen under a per-environment key, sorted.
  function keysOf(key) {
    const seen = new Set();
    for (const m of steps) if (m[key] && typeof m[key] === "object") for (const e of Object.keys(m[key])) seen.add(e);
    return [...seen].sort();
  }
  // Charts with at least one value: metrics a trainer does not write (held-out, truncation) leave no empty boxes.
  function specs() {
    return chartsFor(keysOf("reward_by_env"), keysOf("heldout_by_env"))
      .filter(spec => spec.series.some(([, f]) => steps.some(m => f(m) !== null)));
  }

  function build(visible) {
    for (const c of charts) c.plot.destroy();
    root.replaceChildren();
    charts = visible.map(spec => {
      const box = document.createElement("div");
      box.className = "chart";
      const h = document.createElement("h3");
      h.textContent = spec.title;
      box.appendChild(h);
      root.appendChild(box);
      const opts = {
        width: Math.max(480, box.clientWidth || 520), height: 220,
        scales: { x: { time: false } }, cursor: { drag: { x: true, y: false } },
        // Small values (IS fractions, KL) keep three significant digits instead of rounding to 0.
        axes: [{ label: "step" }, { size: 60, values: (u, ticks) => ticks.map(v => (v === 0 ? "0" : String(+v.toPrecision(3)))) }],
        series: [{ label: "step" }].concat(spec.series.map(([label], i) => ({ label: label, stroke: palette[i % palette.length], width: 1.5, spanGaps: true }))),
      };
      return { spec: spec, plot: new uPlot(opts, data(spec), box) };
    });
  }
  function data(spec) {
    return [steps.map(m => m.step)].concat(spec.series.map(([, f]) => steps.map(f)));
  }
  function refresh() {
    const visible = specs();
    // Rebuilt only when the set of charts or series changes; otherwise new points go in and zoom is kept.
    const now = JSON.stringify(visible.map(spec => [spec.title, spec.series.map(([label]) => label)]));
    if (now !== shape) { shape = now; build(visible); }
    else for (const c of charts) c.plot.setData(data(c.spec));
    const last = steps[steps.length - 1];
    if (!last) return;
    lastStep.textContent = String(last.step);
    const rows = [];
    for (const [k, v] of Object.entries(last)) {
      if (v !== null && typeof v === "object") { for (const [k2, v2] of Object.entries(v)) rows.push([k + "." + k2, v2]); }
      else rows.push([k, v]);
    }
    latest.replaceChildren(...rows.map(([k, v]) => {
      const tr = document.createElement("tr"), th = document.createElement("th"), td = document.createElement("td");
      th.textContent = k;
      td.textContent = typeof v === "number" ? String(Math.round(v * 1e4) / 1e4) : String(v);
      tr.append(th, td);
      return tr;
    }));
  }
  function add(m) {
    if (typeof m.step !== "number") return;
    if (steps.length > 0 && m.step <= steps[steps.length - 1].step) return;
    steps.push(m);
  }

  fetch("/api/metrics?run=" + encodeURIComponent(run), { credentials: "same-origin" })
    .then(r => { if (!r.ok) throw new Error("metrics: HTTP " + r.status); return r.json(); })
    .then(all => {
      for (const m of all) add(m);
      refresh();
      const after = steps.length ? steps[steps.length - 1].step : -2147483648;
      const events = new EventSource("/api/events?run=" + encodeURIComponent(run) + "&after=" + after);
      events.addEventListener("step", e => { add(JSON.parse(e.data)); refresh(); });
      events.onopen = () => { live.textContent = "live"; };
      events.onerror = () => { live.textContent = "reconnecting…"; };
    })
    .catch(err => { live.textContent = "could not load metrics: " + err.message; });
})();
