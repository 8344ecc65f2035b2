/**
 * The page style of the site. The side padding keeps text off the screen's edge on a phone
 * (below 40rem + 2rem the auto margins are zero).
 */
export const bodyStyle = {
  fontFamily: "system-ui, sans-serif",
  maxWidth: "40rem",
  margin: "2rem auto",
  padding: "0 1rem",
  lineHeight: 1.5,
} as const;
