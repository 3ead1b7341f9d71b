// Reading a channel in one's own language: bob chooses Spanish, alice
// writes in English, bob reads her post translated by the workspace's
// provider (Apertium, run by the harness) with the original one click away.
import assert from "node:assert/strict";
import { openChannel, say, scenario, shot, signIn, step, until } from "./lib.mjs";

await scenario(async (browser) => {
  step("bob reads Spanish");
  const bob = await signIn(browser, "bob", "bob-password-long");
  await bob.getByLabel("I read").selectOption("es");

  step("alice writes in English");
  const alice = await signIn(browser, "alice", "alice-password-long");
  await openChannel(alice, "ops");
  await say(alice, "The convoy leaves at dawn from the north gate. See `make deploy`");

  step("bob reads it in Spanish, the original one click away");
  await openChannel(bob, "ops");
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
});
