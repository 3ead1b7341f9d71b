// Two people chat in two browsers: a post, a thread reply, a reaction, a
// file and an image, a mention badge, and a dropped connection that
// resumes without losing what was said meanwhile.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { openChannel, say, scenario, shot, signIn, step, until } from "./lib.mjs";

const control = process.env.ENTENTE_CONTROL;
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP4z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==",
  "base64",
);

await scenario(async (browser) => {
  const alice = await signIn(browser, "alice", "alice-password-long");
  // Bob reaches the server through a link the harness can cut.
  const bob = await signIn(browser, "bob", "bob-password-long", { url: process.env.ENTENTE_PROXY_URL });
  await openChannel(alice, "ops");
  await openChannel(bob, "ops");

  step("alice posts; bob sees it live, rendered");
  await say(alice, "Hello **team**, @bob status at 0900");
  const post = bob.locator(".history article.post", { hasText: "status at 0900" });
  await post.waitFor();
  assert.equal(await post.locator("strong", { hasText: "team" }).count(), 1);
  assert.equal(await post.locator(".mention-me").textContent(), "@bob");

  step("bob replies in a thread; alice sees the reply count and the thread");
  await post.hover();
  await post.getByRole("button", { name: "Reply" }).click();
  const reply = bob.locator("aside.panel textarea");
  await reply.fill("Copy, on my way");
  await reply.press("Enter");
  await bob.locator("aside.panel article.post", { hasText: "Copy, on my way" }).waitFor();
  const alicePost = alice.locator(".history article.post", { hasText: "status at 0900" });
  await alicePost.getByRole("button", { name: "1 reply" }).click();
  await alice.locator("aside.panel article.post", { hasText: "Copy, on my way" }).waitFor();
  await shot(alice, "thread");

  step("bob reacts; alice sees it");
  await post.hover();
  await post.getByRole("button", { name: "Add reaction" }).click();
  await post.getByRole("button", { name: "+1" }).click();
  await alicePost.locator("button.reaction", { hasText: "1" }).waitFor();
  assert.match(await alicePost.locator("button.reaction").getAttribute("aria-label"), /Bob|bob/);

  step("alice attaches a file and an image; bob downloads the file and sees the image");
  await alice.keyboard.press("Escape");
  const report = Buffer.from("grid 31U DQ 48251 11932\n");
  await alice.locator('.composer input[type="file"]').first().setInputFiles([
    { name: "report.txt", mimeType: "text/plain", buffer: report },
    { name: "map.png", mimeType: "image/png", buffer: PNG },
  ]);
  await say(alice, "Latest report and map");
  const attached = bob.locator(".history article.post", { hasText: "Latest report and map" });
  await attached.waitFor();
  const [download] = await Promise.all([
    bob.waitForEvent("download"),
    attached.getByRole("link", { name: "Download report.txt" }).click(),
  ]);
  assert.equal(download.suggestedFilename(), "report.txt");
  assert.deepEqual(await readFile(await download.path()), report);
  const image = attached.locator('img[alt="map.png"]');
  await until("the image preview to load", () => image.evaluate((img) => img.complete && img.naturalWidth === 2));
  await shot(bob, "channel");

  step("a mention elsewhere shows as a badge in bob's sidebar");
  await openChannel(alice, "random");
  await say(alice, "@bob can you check the generator?");
  const badge = bob.locator('nav.sidebar a[data-channel="random"] .mention-badge');
  await badge.waitFor();
  assert.equal(await badge.textContent(), "1");

  step("bob's connection drops; what alice says meanwhile reaches him when it returns");
  await fetch(`${control}/cut`, { method: "POST" });
  await bob.getByText("Connection lost, reconnecting…").waitFor();
  await openChannel(alice, "ops");
  await say(alice, "Said while bob was away");
  await fetch(`${control}/restore`, { method: "POST" });
  await bob.locator(".history article.post", { hasText: "Said while bob was away" }).waitFor({ timeout: 30000 });
  await until("bob's page to say it is live again", async () => !(await bob.getByText("reconnecting").count()));
  const count = await bob.locator(".history article.post", { hasText: "Said while bob was away" }).count();
  assert.equal(count, 1, "shown once, not duplicated");

  step("sign out ends the session");
  await alice.getByRole("button", { name: "Sign out" }).click();
  await alice.getByRole("button", { name: "Sign in" }).waitFor();
  const after = await alice.evaluate(() => fetch("/api/v1/auth/session").then((r) => r.status));
  assert.equal(after, 401);
});
