"use strict";

fetch("/version")
  .then((r) => r.json())
  .then((v) => { document.getElementById("version").textContent = `${v.name} ${v.version}`; })
  .catch(() => { document.getElementById("version").textContent = "an unknown version"; });

document.getElementById("lookup").addEventListener("submit", async (event) => {
  event.preventDefault();
  const slug = document.getElementById("slug").value.trim();
  const out = document.getElementById("result");
  try {
    const res = await fetch("/api/tenant", { headers: { "X-Tenant": slug } });
    out.textContent = JSON.stringify(await res.json(), null, 2);
  } catch (err) {
    out.textContent = `request failed: ${err}`;
  }
});
