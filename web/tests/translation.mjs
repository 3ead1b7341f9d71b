// Reading a channel in one's own language: bob chooses Spanish; alice,
// the channel's admin, turns translation on in ~ops and writes in
// English; bob reads her post translated by the workspace's provider
// (Apertium, run by the harness) with the original one click away, then
// opts out and reads the originals; the system admin sees the provider's
// pairs.
import assert from "node:assert/strict";
import { openChannel, say, scenario, shot, signIn, step, until } from "./lib.mjs";

await scenario(async (browser) => {
  step("bob reads Spanish, and is in ~ops");
  const bob = await signIn(browser, "bob", "bob-password-long");
  await bob.getByLabel("I read").selectOption("es");
  await openChannel(bob, "ops");
  assert.equal(await bob.getByLabel("Translate for me").count(), 0, "nothing to opt out of yet");

  step("alice, its admin, turns translation on and writes in English");
  const alice = await signIn(browser, "alice", "alice-password-long");
  await openChannel(alice, "ops");
  await alice.getByLabel("Translate this channel").check();
  await shot(alice, "translation-on");

  step("bob is told at once, and has it translated for him");
  await until("the switch reaches bob", async () => (await bob.getByLabel("Translate for me").count()) > 0, 10000);
  await bob.getByText("Translated here by apertium").waitFor();
  await say(alice, "The convoy leaves at dawn from the north gate. See `make deploy`");

  step("bob reads it in Spanish, the original one click away");
  const post = bob.locator(".history article.post", { hasText: "make deploy" });
  await until("the translation", async () => (await post.locator(".translation-note").count()) > 0, 30000);
  const translated = await post.locator(".md").textContent();
  assert.ok(!translated.includes("convoy leaves"), translated);
  assert.ok(translated.includes("make deploy"), "code is kept: " + translated);
  assert.match(await post.locator(".translation-note").textContent(), /Translated from en by apertium/);
  await shot(bob, "translated");
  await post.getByRole("button", { name: "Show original" }).click();
  assert.match(await post.locator(".md").textContent(), /The convoy leaves at dawn/);
  await shot(bob, "original");

  step("bob opts out: originals only, now and after");
  await bob.getByLabel("Translate for me").uncheck();
  const again = bob.locator(".history article.post", { hasText: "make deploy" });
  await until("the original", async () => (await again.locator(".translation-note").count()) === 0, 10000);
  assert.match(await again.locator(".md").textContent(), /The convoy leaves at dawn/);
  await say(alice, "The bridge is open at noon for everyone");
  await bob.locator(".history article.post", { hasText: "bridge is open" }).waitFor();
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(
    await bob.locator(".history article.post", { hasText: "bridge is open" }).locator(".translation-note").count(),
    0,
    "not translated for bob any more",
  );
  assert.ok(await bob.getByLabel("Translate for me").isChecked() === false);

  step("the system admin sees what the provider can do");
  const admin = await signIn(browser, "admin", process.env.ENTENTE_ADMIN_PASSWORD);
  await admin.getByRole("link", { name: "Administration" }).click();
  await admin.getByRole("link", { name: "Translation" }).click();
  const status = admin.locator(".translation-status");
  await status.waitFor();
  const text = await status.textContent();
  assert.match(text, /apertium/);
  assert.match(text, /en→es/);
  await shot(admin, "admin-translation");
});
