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

// The one-time setup link: /setup#token=… (the secret stays in the fragment, never sent in a
// URL or a Referer).
if (location.pathname === "/setup") {
  const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
  document.getElementById("setup").hidden = false;
  document.getElementById("setup-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const out = document.getElementById("setup-result");
    const body = {
      token,
      email: document.getElementById("setup-email").value.trim(),
      password: document.getElementById("setup-password").value,
    };
    try {
      const res = await fetch("/api/setup", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      const json = await res.json();
      out.textContent = res.ok
        ? `Created ${json.user.email}. Sign in with it; this link no longer works.`
        : json.error.message;
      if (res.ok) history.replaceState(null, "", "/");
    } catch (err) {
      out.textContent = `request failed: ${err}`;
    }
  });
}
