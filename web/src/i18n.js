// Interface strings come from a catalogue per language (locales/*.js); a
// key missing from one falls back to English, and a missing English key is
// shown as the key itself, so a gap is visible, never blank.
import en from "./locales/en.js";
import fr from "./locales/fr.js";

export const catalogues = { en, fr };
export const languages = [
  ["en", "English"],
  ["fr", "Français"],
];

function initial() {
  const saved = localStorage.getItem("entente.lang");
  if (saved && catalogues[saved]) return saved;
  const wanted = (navigator.languages || [navigator.language || "en"]).map((l) => l.slice(0, 2));
  return wanted.find((l) => catalogues[l]) || "en";
}

let current = initial();
document.documentElement.lang = current;

export function language() {
  return current;
}

export function setLanguage(lang) {
  if (!catalogues[lang]) return;
  current = lang;
  localStorage.setItem("entente.lang", lang);
  document.documentElement.lang = lang;
}

/** The string for `key`, with `{name}` replaced from `vars`. */
export function t(key, vars) {
  const text = catalogues[current][key] ?? en[key] ?? key;
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** A time as the reader's language writes it. */
export function time(iso) {
  const d = new Date(iso);
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  return sameDay
    ? d.toLocaleTimeString(current, { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleString(current, { dateStyle: "medium", timeStyle: "short" });
}
