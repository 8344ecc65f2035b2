import type { ReactNode } from "react";
import { bodyStyle } from "./site-style";

export const metadata = { title: "Example site with llmxt Pro" };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body style={bodyStyle}>{children}</body>
    </html>
  );
}
