// Token view: recolours the generated tokens by the sampler's probability, the trainer's, or their ratio.
// Values come from data attributes the server wrote; nothing here builds markup from text.
(function () {
  "use strict";
  const view = document.getElementById("tokens");
  if (!view) return;
  const buckets = ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "pnan"];
  function bucket(p) { return Number.isFinite(p) ? "p" + Math.max(0, Math.min(9, Math.floor(p * 10))) : "pnan"; }
  function recolour(mode) {
    for (const el of view.querySelectorAll(".tok")) {
      const ls = parseFloat(el.dataset.ls), lt = parseFloat(el.dataset.lt);
      let p;
      if (mode === "trainer") p = Math.exp(lt);
      // A ratio of 1 is the middle colour; twice or half as likely reach the ends.
      else if (mode === "ratio") p = 0.5 + (lt - ls) / (2 * Math.LN2);
      else p = Math.exp(ls);
      el.classList.remove(...buckets);
      el.classList.add(bucket(p));
    }
  }
  for (const radio of document.querySelectorAll("input[name=tokmode]")) radio.addEventListener("change", () => recolour(radio.value));
})();
