/**
 * The page style of the site, used by the layout and by the plain HTML of the "unavailable"
 * page. The side padding keeps text off the screen's edge on a phone (below 40rem + 2rem the
 * auto margins are zero).
 */
export const bodyStyle = {
  fontFamily: "system-ui, sans-serif",
  maxWidth: "40rem",
  margin: "2rem auto",
  padding: "0 1rem",
  lineHeight: 1.5,
} as const;

/** bodyStyle as a CSS declaration list. */
export const bodyCss = Object.entries(bodyStyle)
  .map(([name, value]) => `${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: ${value}`)
  .join("; ");
