// Hostile messages and file names render as inert text: no script runs,
// no element outside Markdown's own appears, no link leads anywhere but
// http(s) or mailto. And the page's policy stops inline script even if
// something did get into the document.
import assert from "node:assert/strict";
import { openChannel, scenario, shot, signIn, step, tolerate } from "./lib.mjs";

const ALLOWED = new Set(["DIV", "P", "BR", "STRONG", "EM", "DEL", "CODE", "PRE", "A", "SPAN", "BLOCKQUOTE", "UL", "OL", "LI", "H3", "H4", "H5", "H6"]);

await scenario(async (browser) => {
  const bob = await signIn(browser, "bob", "bob-password-long");
  const dialogs = [];
  bob.on("dialog", async (d) => {
    dialogs.push(d.message());
    await d.dismiss();
  });
  await openChannel(bob, "ops");
  await bob.locator(".history article.post").first().waitFor();
  // Images load lazily: bring everything into view first.
  await bob.locator(".history").evaluate((el) => (el.scrollTop = 0));
  await bob.waitForTimeout(500);

  step("no script ran, no dialog opened");
  assert.equal(await bob.evaluate(() => window.__pwned), undefined);
  assert.deepEqual(dialogs, []);

  step("only Markdown's elements are in the messages");
  const tags = await bob.locator(".history .md").evaluateAll((nodes) =>
    nodes.flatMap((n) => [n, ...n.querySelectorAll("*")]).map((e) => e.tagName),
  );
  const foreign = tags.filter((t) => !ALLOWED.has(t));
  assert.deepEqual(foreign, [], `unexpected elements: ${foreign}`);
  const attributes = await bob.locator(".history .md *").evaluateAll((nodes) =>
    nodes.flatMap((n) => [...n.attributes].map((a) => a.name)).filter((a) => a.startsWith("on") || a === "style" || a === "srcdoc"),
  );
  assert.deepEqual(attributes, []);

  step("links lead only to http(s) and mailto");
  const hrefs = await bob.locator(".history a[href]").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
  for (const href of hrefs) assert.match(href, /^(https?:|mailto:|#\/|\/api\/v1\/files\/)/i, href);

  step("the hostile text is shown as text");
  await bob.getByText("<script>window.__pwned=1</script>").waitFor();
  await bob.locator('.files a', { hasText: '"><img src=x onerror=window.__pwned=9>.txt' }).waitFor();

  step("inline script is refused by the page's policy");
  tolerate(/Executing inline script violates the following Content Security Policy/);
  const inline = await bob.evaluate(
    () =>
      new Promise((resolve) => {
        document.addEventListener("securitypolicyviolation", (e) => resolve(e.violatedDirective), { once: true });
        const s = document.createElement("script");
        s.textContent = "window.__inline = 1";
        document.body.append(s);
        setTimeout(() => resolve(window.__inline === 1 ? "ran" : "no report"), 2000);
      }),
  );
  assert.match(inline, /^script-src/);
  await shot(bob, "hostile");
});
